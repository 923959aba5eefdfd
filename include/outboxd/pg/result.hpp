#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

struct pg_result;  // libpq's PGresult; only daemon/pg/ sees its definition

namespace outboxd::pg {

// An owned query result (RAII over PGresult). Values are in PostgreSQL's text format.
class result {
 public:
  result() = default;
  explicit result(pg_result* raw);

  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string_view text(int row, int column) const;  // empty for NULL
  std::int64_t int64(int row, int column) const;     // throws std::invalid_argument if not one
  bool boolean(int row, int column) const;           // PostgreSQL's "t"/"f"
  // Rows affected by INSERT/UPDATE/DELETE; 0 for other statements.
  std::int64_t affected_rows() const;

 private:
  struct deleter {
    void operator()(pg_result* raw) const;
  };
  std::unique_ptr<pg_result, deleter> raw_;
};

}  // namespace outboxd::pg
