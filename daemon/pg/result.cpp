#include "outboxd/pg/result.hpp"

#include <libpq-fe.h>

#include <charconv>
#include <stdexcept>
#include <string>

namespace outboxd::pg {

result::result(pg_result* raw) : raw_(raw) {}

void result::deleter::operator()(pg_result* raw) const { PQclear(raw); }

int result::rows() const { return raw_ ? PQntuples(raw_.get()) : 0; }

int result::columns() const { return raw_ ? PQnfields(raw_.get()) : 0; }

bool result::is_null(int row, int column) const {
  return PQgetisnull(raw_.get(), row, column) != 0;
}

std::string_view result::text(int row, int column) const {
  return {PQgetvalue(raw_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(raw_.get(), row, column))};
}

std::int64_t result::int64(int row, int column) const {
  const auto value = text(row, column);
  std::int64_t out = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    throw std::invalid_argument("not an integer: '" + std::string(value) + "'");
  }
  return out;
}

bool result::boolean(int row, int column) const { return text(row, column) == "t"; }

std::int64_t result::affected_rows() const {
  if (!raw_) return 0;
  const char* tuples = PQcmdTuples(raw_.get());
  return (tuples && *tuples) ? std::stoll(tuples) : 0;
}

}  // namespace outboxd::pg
