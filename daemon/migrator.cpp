#include "outboxd/migrator.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <set>

#include "outboxd/sql_bundle.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

// "outboxd" in ASCII: the advisory lock every `outboxd migrate` takes.
constexpr std::string_view kMigrationLockKey = "31372865143011428";

constexpr std::string_view kBootstrap = R"sql(
CREATE SCHEMA IF NOT EXISTS outboxd;
CREATE TABLE IF NOT EXISTS outboxd.schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
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

// Runs a script in one explicit transaction; on failure, leaves the session usable again.
// (Arguments of co_await are named locals throughout: GCC 12 mis-destroys temporaries there.)
asio::awaitable<pg::outcome> in_transaction(pg::connection& connection, const std::string& script) {
  const std::string transaction = "BEGIN;\n" + script + "\n;\nCOMMIT;";
  auto out = co_await connection.execute_script(transaction);
  if (!out && connection.in_failed_transaction()) {
    co_await connection.execute_script("ROLLBACK");
  }
  co_return out;
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

asio::awaitable<migrate_report> migrate(pg::connection& connection,
                                        const migrate_options& options) {
  migrate_report report;
  const auto failed = [&](const pg::outcome& out, std::string what) {
    report.error = out.error;
    report.message = fmt::format("{}: {}", what, out.message);
    return report;
  };

  // Session-level lock: a second `outboxd migrate` waits here, then finds nothing left to do.
  const auto locked =
      co_await connection.execute("SELECT pg_advisory_lock($1::bigint)", kMigrationLockKey);
  if (!locked) co_return failed(locked, "cannot take the migration lock");
  const auto bootstrapped = co_await connection.execute_script(kBootstrap);
  if (!bootstrapped) co_return failed(bootstrapped, "cannot create schema outboxd");
  auto applied_rows =
      co_await connection.execute("SELECT version FROM outboxd.schema_migrations ORDER BY version");
  if (!applied_rows) co_return failed(applied_rows, "cannot read outboxd.schema_migrations");
  std::set<int> applied;
  for (int row = 0; row < applied_rows.rows.rows(); ++row) {
    applied.insert(static_cast<int>(applied_rows.rows.int64(row, 0)));
  }

  const auto known = bundled_migrations();
  for (const auto& m : known) {
    if (applied.contains(m.version)) continue;
    const auto script = fmt::format(
        "{}\n;\nINSERT INTO outboxd.schema_migrations (version, name) VALUES ({}, '{}');", m.sql,
        m.version, m.file);
    auto out = co_await in_transaction(connection, script);
    if (!out) co_return failed(out, fmt::format("migration {} failed", m.file));
    spdlog::info("migrate: applied {}", m.file);
    report.applied.emplace_back(m.file);
    applied.insert(m.version);
  }
  report.schema_version = applied.empty() ? 0 : *applied.rbegin();
  if (!known.empty() && report.schema_version > known.back().version) {
    spdlog::warn("migrate: the database is at schema version {}, newer than this binary's {}",
                 report.schema_version, known.back().version);
  }

  // The view is redefined on every run: cheap, and it follows a changed --iam-schema. The IAM's
  // table names in the adapter are unqualified and bind to iam_schema when the view is created.
  const auto& sql = options.subscriptions_adapter.sql;
  const auto script = fmt::format("SET LOCAL search_path TO {}, pg_catalog;\n{}",
                                  connection.quote_identifier(options.iam_schema), sql);
  auto out = co_await in_transaction(connection, script);
  if (!out) {
    co_return failed(out, fmt::format("adapter {} over schema {} failed (the IAM's own tables must "
                                      "exist before outboxd migrate runs; is --iam-schema right?)",
                                      options.subscriptions_adapter.name, options.iam_schema));
  }

  const auto unlocked =
      co_await connection.execute("SELECT pg_advisory_unlock($1::bigint)", kMigrationLockKey);
  if (!unlocked) co_return failed(unlocked, "cannot release the migration lock");
  co_return report;
}

}  // namespace outboxd
