// `outboxd run` checks the schema version before it starts anything, as the real binary.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "outboxd/migrator.hpp"
#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

TEST(startup, refuses_a_database_that_was_never_migrated) {
  test_database db({.migrate = false});
  daemon_process daemon({"run", "--database-url", db.url()});
  const auto code = daemon.wait_for_exit(20s);
  ASSERT_TRUE(code) << "still running after 20 s:\n" << daemon.log();
  EXPECT_EQ(*code, 1) << daemon.log();
  EXPECT_NE(daemon.log().find("run `outboxd migrate` first"), std::string::npos) << daemon.log();
}

TEST(startup, refuses_a_database_that_misses_a_migration) {
  test_database db;
  const auto latest = std::to_string(bundled_schema_version());
  db.sql().exec("DELETE FROM outboxd.schema_migrations WHERE version = $1", {latest});
  daemon_process daemon({"run", "--database-url", db.url()});
  const auto code = daemon.wait_for_exit(20s);
  ASSERT_TRUE(code) << "still running after 20 s:\n" << daemon.log();
  EXPECT_EQ(*code, 1) << daemon.log();
  EXPECT_NE(daemon.log().find("run `outboxd migrate` first"), std::string::npos) << daemon.log();
}

TEST(startup, refuses_a_database_migrated_by_a_newer_outboxd_and_names_both_versions) {
  test_database db;
  db.sql().exec(
      "INSERT INTO outboxd.schema_migrations (version, name) VALUES (9999, '9999_future.sql')");
  daemon_process daemon({"run", "--database-url", db.url()});
  const auto code = daemon.wait_for_exit(20s);
  ASSERT_TRUE(code) << "still running after 20 s:\n" << daemon.log();
  EXPECT_EQ(*code, 1) << daemon.log();
  const auto expected = "schema version 9999, newer than this binary's version " +
                        std::to_string(bundled_schema_version());
  EXPECT_NE(daemon.log().find(expected), std::string::npos) << daemon.log();
}

std::string fixture() {
  std::ifstream file(OUTBOXD_FERRISKEY_FIXTURE);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

TEST(startup, waits_for_a_database_that_does_not_answer_yet_then_runs) {
  // The database does not exist yet: PostgreSQL refuses the session, as while it starts up.
  const auto name = "t_" + std::to_string(::getpid()) + "_startup_later";
  const auto url = with_database(admin_database_url(), name);
  sql_session server(admin_database_url());
  server.script("DROP DATABASE IF EXISTS " + name);

  daemon_process daemon({"run", "--reconnect-min", "50ms", "--reconnect-max", "200ms",
                         "--poll-interval", "50ms", "--database-url", url});
  ASSERT_TRUE(eventually(
      [&] { return daemon.log().find("cannot connect to PostgreSQL") != std::string::npos; }, 20s))
      << daemon.log();
  EXPECT_FALSE(daemon.wait_for_exit(300ms)) << daemon.log();

  // Prepared under another name, then renamed: it appears at once, migrated, as a server that
  // finished starting up would.
  const auto prepared = name + "_prepared";
  server.script("DROP DATABASE IF EXISTS " + prepared);
  server.script("CREATE DATABASE " + prepared);
  {
    sql_session sql(with_database(admin_database_url(), prepared));
    sql.script(fixture());
    const auto migrated = run_outboxd("migrate --database-url '" +
                                      with_database(admin_database_url(), prepared) + "'");
    ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
    add_realm(sql, uuid(1), "a");
    insert_event(sql, uuid(1), "user.created");
  }
  server.script("ALTER DATABASE " + prepared + " RENAME TO " + name);
  {
    sql_session sql(url);
    const bool dispatched =
        eventually([&] { return sql.scalar("SELECT count(*) FROM outboxd.events") == 1; }, 20s);
    EXPECT_TRUE(dispatched) << daemon.log();
  }
  daemon.send(SIGTERM);
  const auto code = daemon.wait_for_exit(15s);
  EXPECT_EQ(code, std::optional<int>(0)) << daemon.log();
  server.script("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
}

TEST(startup, a_signal_ends_the_wait_for_an_unreachable_database) {
  // Port 1 on loopback: nothing listens there.
  daemon_process daemon({"run", "--connect-timeout", "1s", "--reconnect-max", "200ms",
                         "--database-url", "postgresql://outboxd@127.0.0.1:1/outboxd"});
  ASSERT_TRUE(eventually(
      [&] { return daemon.log().find("cannot connect to PostgreSQL") != std::string::npos; }, 20s))
      << daemon.log();
  EXPECT_FALSE(daemon.wait_for_exit(500ms)) << "gave up instead of waiting:\n" << daemon.log();
  daemon.send(SIGTERM);
  const auto code = daemon.wait_for_exit(10s);
  EXPECT_EQ(code, std::optional<int>(0)) << daemon.log();
}

}  // namespace
}  // namespace outboxd::test
