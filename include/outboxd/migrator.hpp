#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "outboxd/pg/connection.hpp"

namespace outboxd {

// The SQL that defines outboxd.subscriptions over one IAM's tables (sql/adapters/).
struct adapter {
  std::string name;  // "ferriskey", or the file's path for --adapter-file
  std::string sql;
};

// The adapters compiled into the binary, by name ("ferriskey" for sql/adapters/ferriskey.sql).
std::optional<adapter> find_builtin_adapter(std::string_view name);
std::vector<std::string> builtin_adapter_names();

struct migrate_options {
  adapter subscriptions_adapter;
  std::string iam_schema = "public";  // where the IAM's tables live
};

struct migrate_report {
  std::error_code error;
  std::string message;
  std::vector<std::string> applied;  // migration files applied by this run
  int schema_version = 0;            // the database's version afterwards
};

// Brings the database to this binary's schema: applies each missing sql/migrations file in its
// own transaction, records it in outboxd.schema_migrations, then (re)defines the subscriptions
// view from the adapter. Holds an advisory lock throughout, so replicas may all run it at start.
boost::asio::awaitable<migrate_report> migrate(pg::connection& connection,
                                               const migrate_options& options);

}  // namespace outboxd
