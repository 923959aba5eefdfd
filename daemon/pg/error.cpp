#include "outboxd/pg/error.hpp"

#include <string>

namespace outboxd::pg {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "postgres"; }
  std::string message(int code) const override {
    switch (static_cast<errc>(code)) {
      case errc::connect_failed:
        return "cannot connect to PostgreSQL";
      case errc::connection_lost:
        return "connection to PostgreSQL lost";
      case errc::timeout:
        return "PostgreSQL did not answer in time";
      case errc::query_failed:
        return "statement failed";
      case errc::closed:
        return "connection closed";
    }
    return "unknown PostgreSQL error";
  }
};

}  // namespace

const std::error_category& error_category() {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) { return {static_cast<int>(e), error_category()}; }

bool is_row_error(std::string_view sqlstate) {
  return sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate.starts_with("54");
}

bool is_connection_error(std::error_code ec) {
  return ec == errc::connect_failed || ec == errc::connection_lost || ec == errc::timeout ||
         ec == errc::closed;
}

}  // namespace outboxd::pg
