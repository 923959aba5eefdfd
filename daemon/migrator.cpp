#include "outboxd/migrator.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <set>

#include "outboxd/log.hpp"
#include "outboxd/sql_bundle.hpp"

namespace outboxd {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("migrator");
  return *component;
}

// "outboxd" in ASCII: the advisory lock every `outboxd migrate` takes.
constexpr std::string_view kMigrationLockKey = "31372865143011428";
// How often a waiting migrator asks for the lock again.
constexpr auto kLockPoll = 200ms;
// A transaction that hit lock_timeout is retried this many times in all, after 0.5 s, 1 s, 2 s...
constexpr int kLockAttempts = 5;
constexpr auto kFirstLockRetry = 500ms;

constexpr std::string_view kSchemaPlaceholder = "@iam_schema@";

// Opens the migration transaction. pg_catalog comes first in search_path so nothing a user
// created can shadow a built-in; every outboxd object is qualified. lock_timeout makes outboxd's
// DDL give way to the IAM's traffic; check_function_bodies makes the adapter's CREATE FUNCTION
// check that the IAM's tables exist. The last result is the versions already applied.
constexpr std::string_view kBegin = R"sql(
BEGIN;
SET LOCAL search_path TO pg_catalog, pg_temp;
SET LOCAL lock_timeout = '{}ms';
SET LOCAL check_function_bodies = on;
CREATE SCHEMA IF NOT EXISTS outboxd;
CREATE TABLE IF NOT EXISTS outboxd.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
SELECT version FROM outboxd.schema_migrations ORDER BY version;
)sql";

// Who holds the migration lock (a bigint key shows in pg_locks as classid:objid).
constexpr std::string_view kLockHolder = R"sql(
SELECT pid FROM pg_catalog.pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 1
  AND ((classid::bigint << 32) | objid::bigint) = $1::bigint AND pid <> pg_catalog.pg_backend_pid()
LIMIT 1
)sql";

struct migration {
  int version = 0;
  std::string_view file;
  std::string_view sql;
};

// sql/migrations/NNNN_name.sql → version NNNN.
std::vector<migration> bundled_migrations() {
  std::vector<migration> out;
  for (const auto& file : sql_bundle::migrations()) {
    migration m{.file = file.name, .sql = file.text};
    const auto [end, ec] =
        std::from_chars(file.name.data(), file.name.data() + file.name.size(), m.version);
    if (ec != std::errc{} || end == file.name.data() || *end != '_') {
      throw std::logic_error(fmt::format("bad migration file name {}", file.name));
    }
    out.push_back(m);
  }
  return out;
}

// The versions column of outboxd.schema_migrations, as read.
std::set<int> versions_in(const pg::result& rows) {
  std::set<int> versions;
  for (int row = 0; row < rows.rows(); ++row) versions.insert(static_cast<int>(rows.int64(row, 0)));
  return versions;
}

std::string replace_all(std::string text, std::string_view from, const std::string& to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The outcome of one attempt at the migration transaction.
struct attempt {
  pg::outcome out;
  std::string what;  // which step failed
  std::vector<std::string> applied;
  std::set<int> versions;  // applied afterwards
};

asio::awaitable<void> roll_back(pg::connection& connection, pg::clock::time_point deadline) {
  if (connection.is_open()) {
    // Harmless when no transaction is open (the server only warns).
    co_await connection.execute_script("ROLLBACK", deadline);
  }
}

// Every pending migration and the adapter in one transaction: all of it commits, or none.
asio::awaitable<attempt> apply_all(pg::connection& connection, const migrate_options& options,
                                   const std::string& adapter_sql, pg::clock::time_point deadline) {
  attempt result;
  const auto begin = fmt::format(kBegin, options.lock_timeout.count());
  auto versions = co_await connection.execute_script(begin, deadline);
  if (!versions) {
    result.out = std::move(versions);
    result.what = "cannot create schema outboxd";
    co_await roll_back(connection, deadline);
    co_return result;
  }
  result.versions = versions_in(versions.rows);

  for (const auto& m : bundled_migrations()) {
    if (result.versions.contains(m.version)) continue;
    if (options.up_to && m.version > *options.up_to) break;
    const auto script = fmt::format(
        "{}\n;\nINSERT INTO outboxd.schema_migrations (version, name) VALUES ({}, '{}');", m.sql,
        m.version, m.file);
    auto out = co_await connection.execute_script(script, deadline);
    if (!out) {
      result.out = std::move(out);
      result.what = fmt::format("migration {} failed", m.file);
      co_await roll_back(connection, deadline);
      co_return result;
    }
    result.applied.emplace_back(m.file);
    result.versions.insert(m.version);
  }

  // Redefined on every run: cheap, and it follows a changed --iam-schema.
  auto defined = co_await connection.execute_script(adapter_sql, deadline);
  if (!defined) {
    result.what = fmt::format(
        "adapter {} over schema {} failed (the IAM's own tables must exist in schema {} before "
        "outboxd migrate runs; is --iam-schema right?)",
        options.subscriptions_adapter.name, options.iam_schema, options.iam_schema);
    result.out = std::move(defined);
    co_await roll_back(connection, deadline);
    co_return result;
  }
  auto committed = co_await connection.execute_script("COMMIT", deadline);
  if (!committed) {
    result.out = std::move(committed);
    result.what = "cannot commit the migration";
    co_await roll_back(connection, deadline);
    co_return result;
  }
  co_return result;
}

// Waits at most lock_wait for the session-level migration lock. Empty message: taken.
asio::awaitable<std::string> take_migration_lock(pg::connection& connection,
                                                 milliseconds lock_wait) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const auto give_up = pg::clock::now() + lock_wait;
  bool told = false;
  for (;;) {
    const auto locked = co_await connection.execute(
        "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)", kMigrationLockKey);
    if (!locked) co_return fmt::format("cannot take the migration lock: {}", locked.message);
    if (locked.rows.boolean(0, 0)) co_return std::string{};

    const auto holder = co_await connection.execute(kLockHolder, kMigrationLockKey);
    const std::string pid =
        holder && holder.rows.rows() == 1
            ? fmt::format(" (PostgreSQL backend pid {})", holder.rows.text(0, 0))
            : std::string{};
    const auto now = pg::clock::now();
    if (now >= give_up) {
      co_return fmt::format(
          "another outboxd migrate holds the migration lock{}; gave up after --lock-wait {} ms",
          pid, lock_wait.count());
    }
    if (!told) {
      log().info("migrate: another outboxd migrate holds the migration lock{}; waiting up to {} ms",
                 pid, lock_wait.count());
      told = true;
    }
    timer.expires_after(std::min<pg::clock::duration>(kLockPoll, give_up - now));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace

std::optional<adapter> find_builtin_adapter(std::string_view name) {
  for (const auto& file : sql_bundle::adapters()) {
    if (file.name == fmt::format("{}.sql", name))
      return adapter{std::string(name), std::string(file.text)};
  }
  return std::nullopt;
}

std::vector<std::string> builtin_adapter_names() {
  std::vector<std::string> names;
  for (const auto& file : sql_bundle::adapters()) {
    names.emplace_back(file.name.substr(0, file.name.size() - std::string_view(".sql").size()));
  }
  return names;
}

int bundled_schema_version() {
  const auto known = bundled_migrations();
  return known.empty() ? 0 : known.back().version;
}

// (Arguments of co_await are named locals throughout: GCC 12 mis-destroys temporaries there.)
asio::awaitable<migrate_report> migrate(pg::connection& connection,
                                        const migrate_options& options) {
  migrate_report report;
  const auto deadline = pg::clock::now() + options.timeout;
  const auto failed = [&](std::error_code error, std::string message) {
    report.error = error ? error : std::make_error_code(std::errc::operation_canceled);
    report.message = std::move(message);
    return report;
  };

  // DDL may wait on locks and rewrite nothing, but a large CREATE INDEX may still take long:
  // the server's statement_timeout is off for this session, the client-side deadline stays.
  // A session whose client gave up (its deadline) ends its statement within a second instead of
  // waiting on, or holding, locks until the statement completes (PostgreSQL 14 and later).
  const auto session = co_await connection.execute_script(
      "SET statement_timeout = 0;"
      "SELECT pg_catalog.set_config('client_connection_check_interval', '1s', false) "
      "WHERE pg_catalog.current_setting('server_version_num')::int >= 140000",
      deadline);
  if (!session) co_return failed(session.error, session.message);

  const auto lock_error = co_await take_migration_lock(connection, options.lock_wait);
  if (!lock_error.empty()) co_return failed(pg::errc::query_failed, lock_error);

  const auto schema = co_await connection.execute(
      "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1", options.iam_schema);
  if (!schema) co_return failed(schema.error, schema.message);
  if (schema.rows.rows() == 0) {
    co_return failed(pg::errc::query_failed,
                     fmt::format("schema {} does not exist: set --iam-schema to the schema that "
                                 "holds the IAM's tables",
                                 options.iam_schema));
  }
  const auto adapter_sql = replace_all(options.subscriptions_adapter.sql, kSchemaPlaceholder,
                                       connection.quote_identifier(options.iam_schema));

  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer retry(executor);
  auto delay = milliseconds(kFirstLockRetry);
  for (int attempt_number = 1;; ++attempt_number) {
    auto result = co_await apply_all(connection, options, adapter_sql, deadline);
    if (result.out) {
      for (const auto& file : result.applied) log().info("migrate: applied {}", file);
      report.applied = std::move(result.applied);
      report.schema_version = result.versions.empty() ? 0 : *result.versions.rbegin();
      break;
    }
    if (result.out.error == pg::errc::timeout) {
      co_return failed(result.out.error,
                       fmt::format("{}: did not finish within --migrate-timeout {} ms; nothing was "
                                   "changed",
                                   result.what, options.timeout.count()));
    }
    const bool lock_busy = result.out.sqlstate == "55P03";  // lock_not_available
    if (!lock_busy) {
      co_return failed(result.out.error, fmt::format("{}: {}", result.what, result.out.message));
    }
    if (attempt_number == kLockAttempts || pg::clock::now() + delay >= deadline) {
      co_return failed(result.out.error,
                       fmt::format("{}: a lock stayed busy past --lock-timeout {} ms in {} "
                                   "attempts ({}); nothing was changed, run it again later",
                                   result.what, options.lock_timeout.count(), attempt_number,
                                   result.out.primary));
    }
    log().warn(
        "migrate: {} ({}): the IAM's traffic goes first; retrying in {} ms (attempt {} of {})",
        result.what, result.out.primary, delay.count(), attempt_number + 1, kLockAttempts);
    retry.expires_after(delay);
    co_await retry.async_wait(asio::as_tuple(asio::use_awaitable));
    delay *= 2;
  }

  const int bundled = bundled_schema_version();
  if (report.schema_version > bundled) {
    log().warn("migrate: the database is at schema version {}, newer than this binary's {}",
               report.schema_version, bundled);
  }
  const auto unlocked = co_await connection.execute(
      "SELECT pg_catalog.pg_advisory_unlock($1::bigint)", kMigrationLockKey);
  if (!unlocked)
    co_return failed(unlocked.error, "cannot release the migration lock: " + unlocked.message);
  co_return report;
}

asio::awaitable<schema_check> check_schema_version(pg::connection& connection) {
  schema_check check;
  const auto exists = co_await connection.execute(
      "SELECT pg_catalog.to_regclass('outboxd.schema_migrations') IS NOT NULL");
  if (!exists) {
    check.error = exists.error;
    check.message = exists.message;
    co_return check;
  }
  const int bundled = bundled_schema_version();
  if (!exists.rows.boolean(0, 0)) {
    check.status = schema_check::state::behind;
    check.message = fmt::format(
        "the database has no outboxd schema (this binary needs version {}): run `outboxd migrate` "
        "first",
        bundled);
    co_return check;
  }
  const auto rows =
      co_await connection.execute("SELECT version FROM outboxd.schema_migrations ORDER BY version");
  if (!rows) {
    check.error = rows.error;
    check.message = rows.message;
    co_return check;
  }
  const auto applied = versions_in(rows.rows);
  check.database_version = applied.empty() ? 0 : *applied.rbegin();
  if (check.database_version > bundled) {
    check.status = schema_check::state::ahead;
    check.message = fmt::format(
        "the database is at outboxd schema version {}, newer than this binary's version {}: run "
        "the outboxd that migrated it, or a newer one",
        check.database_version, bundled);
    co_return check;
  }
  for (const auto& m : bundled_migrations()) {
    if (applied.contains(m.version)) continue;
    check.status = schema_check::state::behind;
    check.message = fmt::format(
        "the database is at outboxd schema version {} without {}; this binary needs version {}: "
        "run `outboxd migrate` first",
        check.database_version, m.file, bundled);
    co_return check;
  }
  check.status = schema_check::state::current;
  co_return check;
}

}  // namespace outboxd
