#pragma once

#include <string_view>
#include <vector>

namespace outboxd::sql_bundle {

// One file of sql/, compiled into the binary by cmake/embed_sql.cmake.
struct sql_file {
  std::string_view name;  // e.g. "0001_outbox.sql" or "ferriskey.sql"
  std::string_view text;
};

// sql/migrations/*.sql in file-name order.
const std::vector<sql_file>& migrations();

// sql/adapters/*.sql in file-name order.
const std::vector<sql_file>& adapters();

}  // namespace outboxd::sql_bundle
