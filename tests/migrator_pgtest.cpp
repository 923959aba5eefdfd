// `outboxd migrate`, run as operators run it: the real binary against a real database.
#include <gtest/gtest.h>

#include <future>

#include "outboxd/sql_bundle.hpp"
#include "support/iam_rows.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {

const auto kMigrationCount = static_cast<std::int64_t>(sql_bundle::migrations().size());

const std::string kExpectedTables =
    "attempts,deliveries,disabled_webhooks,events,outbox,schema_migrations";

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
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.subscriptions"), 0);
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
      "FROM outboxd.subscriptions");
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
  EXPECT_NE(failed.output.find("\"webhooks\" does not exist"), std::string::npos) << failed.output;

  test_database with_tables;  // a database where the IAM ran first
  const auto ok = run_outboxd("migrate --database-url '" + with_tables.url() + "'");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
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
