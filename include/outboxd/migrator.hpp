#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "outboxd/pg/connection.hpp"

namespace outboxd {

// The SQL that defines the function outboxd.subscriptions() over one IAM's tables
// (sql/adapters/). `@iam_schema@` in it stands for the quoted name of the IAM's schema.
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
  // How long to wait for another `outboxd migrate` holding the migration lock.
  std::chrono::milliseconds lock_wait{60'000};
  // lock_timeout of the DDL: outboxd's DDL gives way to the IAM's traffic instead of queueing in
  // front of it; the transaction is retried a few times with backoff.
  std::chrono::milliseconds lock_timeout{5000};
  // The client-side deadline of the whole run (the server's statement_timeout is off for it).
  std::chrono::milliseconds timeout{std::chrono::hours(1)};
  // For tests: apply the bundled migrations up to this version only.
  std::optional<int> up_to;
};

struct migrate_report {
  std::error_code error;
  std::string message;
  std::vector<std::string> applied;  // migration files applied by this run
  int schema_version = 0;            // the database's version afterwards
};

// Brings the database to this binary's schema: applies every missing sql/migrations file and
// (re)defines outboxd.subscriptions() from the adapter, all in one transaction, so a failure
// leaves the database exactly as it was. Holds an advisory lock throughout, so replicas may all
// run it at start; a second one waits at most lock_wait.
boost::asio::awaitable<migrate_report> migrate(pg::connection& connection,
                                               const migrate_options& options);

// The newest schema version compiled into this binary.
int bundled_schema_version();

struct schema_check {
  enum class state {
    current,      // the database has every bundled migration and nothing newer
    behind,       // no outboxd schema, or migrations missing: run `outboxd migrate`
    ahead,        // migrated by a newer outboxd
    unavailable,  // the check itself failed (connection lost, ...); error says why
  };
  state status = state::unavailable;
  int database_version = 0;
  std::error_code error;
  std::string message;  // for behind, ahead and unavailable: what to tell the operator
};

// What `outboxd run` checks before it starts: is the database at this binary's schema version?
boost::asio::awaitable<schema_check> check_schema_version(pg::connection& connection);

}  // namespace outboxd
