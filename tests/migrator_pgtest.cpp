// `outboxd migrate`, run as operators run it: the real binary against a real database.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <map>

#include "outboxd/migrator.hpp"
#include "outboxd/sql_bundle.hpp"
#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

const auto kMigrationCount = static_cast<std::int64_t>(sql_bundle::migrations().size());

const std::string kExpectedTables =
    "attempts,deliveries,disabled_webhooks,events,open_circuits,outbox,poison_events,"
    "schema_migrations,webhook_policies,webhook_secrets";

// The key every `outboxd migrate` locks ("outboxd" in ASCII).
constexpr std::string_view kMigrationLock = "31372865143011428";

std::int64_t outboxd_schemas(sql_session& sql) {
  return sql.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'outboxd'");
}

// A plain function, not a capturing lambda: a lambda coroutine's captures die with the lambda.
asio::awaitable<migrate_report> connect_and_migrate(pg::connection& connection,
                                                    pg::connection_options database,
                                                    migrate_options options) {
  const auto ec = co_await connection.connect(database);
  if (ec) co_return migrate_report{.error = ec, .message = connection.last_error()};
  co_return co_await migrate(connection, options);
}

// The migrator in-process, as `outboxd migrate` runs it, optionally only up to a version.
migrate_report migrate_in_process(const std::string& url, std::optional<int> up_to) {
  asio::io_context io;
  pg::connection connection(io.get_executor());
  migrate_options options{.subscriptions_adapter = *find_builtin_adapter("ferriskey"),
                          .up_to = up_to};
  auto report = asio::co_spawn(
      io,
      connect_and_migrate(connection, {.url = url, .application_name = "outboxd test migrate"},
                          options),
      asio::use_future);
  io.run();
  return report.get();
}

std::vector<int> bundled_versions() {
  std::vector<int> out;
  for (const auto& file : sql_bundle::migrations())
    out.push_back(std::stoi(std::string(file.name.substr(0, 4))));
  return out;
}

// A row in every outboxd table there is at this version. A table without a recipe here makes
// the rewrite test fail, so a new table gets one.
void populate(sql_session& sql) {
  const std::vector<std::pair<std::string, std::string>> recipes{
      {"outbox",
       "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
       "SELECT $1, 'user.created', $1, jsonb_build_object('n', n) FROM generate_series(1, 50) n"},
      {"events",
       "INSERT INTO outboxd.events (id, realm_id, event, resource_id, data, created_at) "
       "SELECT 100000 + n, $1, 'user.created', $1, '{}', now() FROM generate_series(1, 50) n"},
      {"deliveries",
       "INSERT INTO outboxd.deliveries (event_id, webhook_id) "
       "SELECT id, $1 FROM outboxd.events"},
      {"attempts",
       "INSERT INTO outboxd.attempts (delivery_id, attempt_number, started_at, duration_ms, "
       "succeeded) SELECT id, 1, now(), 5, false FROM outboxd.deliveries WHERE $1::uuid IS NOT "
       "NULL"},
      {"disabled_webhooks",
       "INSERT INTO outboxd.disabled_webhooks (webhook_id, reason) VALUES ($1, 'gone')"},
      {"poison_events",
       "INSERT INTO outboxd.poison_events (id, realm_id, event, resource_id, created_at, sqlstate, "
       "error_message) VALUES (200000, $1, 'user.created', $1, now(), '23505', 'duplicate')"},
      {"open_circuits",
       "INSERT INTO outboxd.open_circuits (endpoint, open_until, opened_by) "
       "SELECT 'https://hooks.example:443', now() + interval '30 seconds', $1::text"},
      {"webhook_policies",
       "INSERT INTO outboxd.webhook_policies (webhook_id, max_attempts) VALUES ($1, 3)"},
      {"webhook_secrets",
       "INSERT INTO outboxd.webhook_secrets (webhook_id, secret) VALUES ($1, 'whsec_old')"},
  };
  for (const auto& [table, sql_text] : recipes) {
    const auto exists = sql.scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON "
        "n.oid = c.relnamespace WHERE n.nspname = 'outboxd' AND "
        "c.relname = $1 AND c.relkind = 'r'",
        {table});
    if (exists == 1) sql.exec(sql_text, {uuid(1)});
  }
}

// Each outboxd table's relfilenode: a rewrite (ADD COLUMN with a volatile default, a type
// change, VACUUM FULL) gives the table a new one.
std::map<std::string, std::string> relfilenodes(sql_session& sql) {
  const auto rows = sql.exec(
      "SELECT c.relname::text, c.relfilenode::text FROM pg_class c JOIN pg_namespace n ON "
      "n.oid = c.relnamespace WHERE n.nspname = 'outboxd' AND c.relkind = 'r'");
  std::map<std::string, std::string> out;
  for (int i = 0; i < rows.rows(); ++i) out.emplace(rows.text(i, 0), rows.text(i, 1));
  return out;
}

std::string outboxd_tables(sql_session& sql) {
  return std::string(sql.exec("SELECT string_agg(table_name::text, ',' ORDER BY table_name) "
                              "FROM information_schema.tables WHERE table_schema = 'outboxd' "
                              "AND table_type = 'BASE TABLE'")
                         .text(0, 0));
}

TEST(migrate, running_it_again_changes_nothing) {
  test_database db;  // already migrated once
  const auto tables = outboxd_tables(db.sql());
  EXPECT_EQ(tables, kExpectedTables);

  const auto again = run_outboxd("migrate --database-url '" + db.url() + "'");
  EXPECT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 migration(s) applied"), std::string::npos) << again.output;
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.schema_migrations"), kMigrationCount);
  EXPECT_EQ(outboxd_tables(db.sql()), tables);
}

TEST(migrate, two_processes_at_once_make_one_schema_without_error) {
  test_database db({.migrate = false});
  const auto command = "migrate --database-url '" + db.url() + "'";
  auto first = std::async(std::launch::async, [&] { return run_outboxd(command); });
  auto second = std::async(std::launch::async, [&] { return run_outboxd(command); });
  const auto a = first.get();
  const auto b = second.get();
  EXPECT_EQ(a.exit_code, 0) << a.output;
  EXPECT_EQ(b.exit_code, 0) << b.output;
  // Exactly one of them applied the migrations; both defined the view.
  const bool a_applied = a.output.find("applied 0001") != std::string::npos;
  const bool b_applied = b.output.find("applied 0001") != std::string::npos;
  EXPECT_NE(a_applied, b_applied) << a.output << "\n---\n" << b.output;
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.schema_migrations"), kMigrationCount);
  EXPECT_EQ(outboxd_tables(db.sql()), kExpectedTables);
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.subscriptions()"), 0);
}

TEST(migrate, the_adapter_reads_the_iam_tables_from_the_schema_it_is_given) {
  test_database db({.iam_schema = "iam"});
  auto& sql = db.sql();
  sql.script("SET search_path TO iam");
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1), "https://receiver.example/hook");
  subscribe(sql, uuid(11), "user.created");
  sql.script("RESET search_path");

  const auto rows = sql.exec(
      "SELECT webhook_id::text, realm_id::text, event, url, headers::text, length(secret) "
      "FROM outboxd.subscriptions()");
  ASSERT_EQ(rows.rows(), 1);
  EXPECT_EQ(rows.text(0, 0), uuid(11));
  EXPECT_EQ(rows.text(0, 1), uuid(1));
  EXPECT_EQ(rows.text(0, 2), "user.created");
  EXPECT_EQ(rows.text(0, 3), "https://receiver.example/hook");
  EXPECT_EQ(rows.text(0, 4), "{}");
  EXPECT_EQ(rows.int64(0, 5), 64);
}

TEST(migrate, says_clearly_when_the_iam_tables_are_missing_and_succeeds_once_they_exist) {
  test_database db({.create_ferriskey_tables = false, .migrate = false});
  const auto command = "migrate --database-url '" + db.url() + "'";
  const auto failed = run_outboxd(command);
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_NE(failed.output.find("adapter ferriskey over schema public failed"), std::string::npos)
      << failed.output;
  EXPECT_NE(failed.output.find("\"public.webhooks\" does not exist"), std::string::npos)
      << failed.output;
  EXPECT_NE(failed.output.find("--iam-schema"), std::string::npos) << failed.output;
  // All or nothing: the migrations before the adapter were rolled back with it.
  EXPECT_EQ(outboxd_schemas(db.sql()), 0);

  const auto no_schema = run_outboxd("migrate --iam-schema nope --database-url '" + db.url() + "'");
  EXPECT_EQ(no_schema.exit_code, 1) << no_schema.output;
  EXPECT_NE(no_schema.output.find("schema nope does not exist"), std::string::npos)
      << no_schema.output;
  EXPECT_EQ(outboxd_schemas(db.sql()), 0);

  test_database with_tables;  // a database where the IAM ran first
  const auto ok = run_outboxd("migrate --database-url '" + with_tables.url() + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
}

TEST(migrate, the_subscriptions_function_is_inlined_and_lets_the_iam_alter_its_tables) {
  test_database db;
  auto& sql = db.sql();
  // Inlined: the planner sees the IAM's tables, not an opaque function scan.
  const auto plan = sql.exec(
      "EXPLAIN (COSTS OFF) SELECT * FROM outboxd.subscriptions() AS s "
      "WHERE s.realm_id = '00000000-0000-0000-0000-000000000001'");
  std::string text;
  for (int i = 0; i < plan.rows(); ++i) text += std::string(plan.text(i, 0)) + "\n";
  EXPECT_EQ(text.find("Function Scan"), std::string::npos) << text;
  EXPECT_NE(text.find("webhooks"), std::string::npos) << text;

  // The IAM's own migrations go through while outboxd is installed.
  const auto widened =
      sql.try_exec("ALTER TABLE webhooks ALTER COLUMN endpoint TYPE varchar(2048)");
  EXPECT_TRUE(widened) << widened.message;
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1), "https://receiver.example/" + std::string(1000, 'x'));
  subscribe(sql, uuid(11), "user.created");
  EXPECT_EQ(sql.scalar("SELECT length(url) FROM outboxd.subscriptions()"), 1025);
}

TEST(migrate, no_migration_rewrites_a_populated_table) {
  const auto versions = bundled_versions();
  ASSERT_GE(versions.size(), 2u);
  for (std::size_t k = 1; k < versions.size(); ++k) {
    SCOPED_TRACE("migrations after version " + std::to_string(versions[k - 1]));
    test_database db({.migrate = false});
    auto& sql = db.sql();
    const auto first = migrate_in_process(db.url(), versions[k - 1]);
    ASSERT_FALSE(first.error) << first.message;
    ASSERT_EQ(first.schema_version, versions[k - 1]);
    populate(sql);
    const auto before = relfilenodes(sql);
    for (const auto& [table, node] : before) {
      EXPECT_GT(sql.scalar("SELECT count(*) FROM outboxd." + table), 0)
          << "outboxd." << table << " has no row: add one to populate()";
    }

    const auto rest = migrate_in_process(db.url(), std::nullopt);
    ASSERT_FALSE(rest.error) << rest.message;
    ASSERT_EQ(rest.schema_version, versions.back());
    const auto after = relfilenodes(sql);
    for (const auto& [table, node] : before) {
      ASSERT_TRUE(after.contains(table)) << "outboxd." << table << " is gone";
      EXPECT_EQ(after.at(table), node) << "outboxd." << table << " was rewritten";
    }
  }
}

TEST(migrate, a_second_migrate_waits_a_bounded_time_and_names_the_holder) {
  test_database db;
  sql_session holder(db.url(), "another migrate");
  holder.exec("SELECT pg_advisory_lock($1::bigint)", {kMigrationLock});
  const auto pid = holder.scalar("SELECT pg_backend_pid()");

  daemon_process waiting({"migrate", "--lock-wait", "1s", "--database-url", db.url()});
  const auto code = waiting.wait_for_exit(20s);
  ASSERT_TRUE(code) << "still waiting for the lock after 20 s:\n" << waiting.log();
  EXPECT_EQ(*code, 1) << waiting.log();
  EXPECT_NE(waiting.log().find("another outboxd migrate holds the migration lock"),
            std::string::npos)
      << waiting.log();
  EXPECT_NE(waiting.log().find("pid " + std::to_string(pid)), std::string::npos) << waiting.log();

  holder.exec("SELECT pg_advisory_unlock($1::bigint)", {kMigrationLock});
  const auto after = run_outboxd("migrate --lock-wait 1s --database-url '" + db.url() + "'");
  EXPECT_EQ(after.exit_code, 0) << after.output;
}

TEST(migrate, gives_way_to_a_lock_the_iam_holds_and_retries_without_a_statement_timeout) {
  test_database db;
  sql_session iam(db.url(), "iam migration");
  // The IAM's own migration holds its table; the adapter must read it.
  iam.script("BEGIN; LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE");

  // A statement timeout shorter than the lock timeout: the migration must not be subject to it.
  daemon_process migrating({"migrate", "--lock-timeout", "300ms", "--statement-timeout", "100ms",
                            "--database-url", db.url()});
  const bool gave_way =
      eventually([&] { return migrating.log().find("retrying in") != std::string::npos; }, 20s);
  EXPECT_TRUE(gave_way) << migrating.log();
  iam.script("COMMIT");
  const auto code = migrating.wait_for_exit(30s);
  ASSERT_TRUE(code) << migrating.log();
  EXPECT_EQ(*code, 0) << migrating.log();
}

TEST(migrate, stops_at_its_own_deadline_and_changes_nothing) {
  test_database db({.migrate = false});
  sql_session iam(db.url(), "iam migration");
  iam.script("BEGIN; LOCK TABLE webhooks IN ACCESS EXCLUSIVE MODE");
  daemon_process migrating(
      {"migrate", "--lock-timeout", "1h", "--migrate-timeout", "1s", "--database-url", db.url()});
  const auto code = migrating.wait_for_exit(20s);
  ASSERT_TRUE(code) << migrating.log();
  EXPECT_EQ(*code, 1) << migrating.log();
  EXPECT_NE(migrating.log().find("--migrate-timeout"), std::string::npos) << migrating.log();
  iam.script("COMMIT");
  EXPECT_EQ(outboxd_schemas(db.sql()), 0);
}

TEST(migrate, an_unreachable_database_fails_without_printing_the_password) {
  // Port 1 on loopback: nothing listens there.
  const auto out = run_outboxd(
      "migrate --connect-timeout 2s "
      "--database-url 'postgresql://outboxd:s3cret-pw@127.0.0.1:1/outboxd'");
  EXPECT_EQ(out.exit_code, 1) << out.output;
  EXPECT_NE(out.output.find("cannot connect to PostgreSQL"), std::string::npos) << out.output;
  EXPECT_EQ(out.output.find("s3cret-pw"), std::string::npos) << out.output;
}

TEST(migrate, without_a_database_setting_it_exits_2_and_says_what_to_set) {
  const auto out = run_outboxd("migrate");
  EXPECT_EQ(out.exit_code, 2) << out.output;
  EXPECT_NE(out.output.find("OUTBOXD_DATABASE_URL"), std::string::npos) << out.output;
}

}  // namespace
}  // namespace outboxd::test
