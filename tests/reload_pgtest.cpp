// SIGHUP on the real binary: a good config file changes the live settings at once (seen in the
// database and at the receiver), a setting that needs a restart is logged as such, and a bad
// file changes nothing: the log names the setting, the settings in force stay, deliveries go on.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <string>

#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

TEST(reload, sighup_applies_a_good_file_and_keeps_the_settings_when_the_file_is_bad) {
  test_database db;
  receiver hooks;
  hooks.react("/fail", {}, reaction::with_status(500));
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "acme");
  add_webhook(sql, uuid(11), uuid(1), hooks.url("/fail"));
  subscribe(sql, uuid(11), "user.created");
  add_webhook(sql, uuid(12), uuid(1), hooks.url("/ok"));
  subscribe(sql, uuid(12), "user.created");

  const std::string config = ::testing::TempDir() + "outboxd_reload_" + std::to_string(::getpid());
  const std::string good_start =
      "# retries every 300ms, practically forever\n"
      "allow-cidr = 127.0.0.0/8\nretry-schedule = 300ms\nmax-attempts = 100\n";
  write_file(config, good_start);
  // clang-format off
  daemon_process daemon({"run",
                         "--database-url", db.url(),
                         "--config", config,
                         "--poll-interval", "100ms",
                         "--reconnect-min", "50ms",
                         "--shutdown-timeout", "5s"});
  // clang-format on
  const auto failing = [&](const std::string& status) {
    return sql.scalar(
        "SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = $1 AND status = $2",
        {uuid(11), status});
  };

  insert_event(sql, uuid(1), "user.created");
  ASSERT_TRUE(hooks.wait_for_count(1, 30s, "/ok")) << daemon.log();
  // Retried under the file's schedule: several attempts, still pending.
  ASSERT_TRUE(eventually([&] { return hooks.count("/fail") >= 3; }, 30s, 20ms)) << daemon.log();
  EXPECT_EQ(failing("dead"), 0);

  // A good change: one attempt is all a delivery gets now; batch-size needs a restart.
  write_file(config,
             "allow-cidr = 127.0.0.0/8\nretry-schedule = 300ms\nmax-attempts = 1\n"
             "batch-size = 100\n");
  daemon.send(SIGHUP);
  ASSERT_TRUE(eventually(
      [&] {
        return daemon.log().find("SIGHUP: applied max-attempts 100 -> 1") != std::string::npos;
      },
      10s, 10ms))
      << daemon.log();
  EXPECT_NE(daemon.log().find("batch-size changed: takes effect after a restart"),
            std::string::npos)
      << daemon.log();
  // The next failure ends the retrying delivery: dead, without a further retry scheduled.
  EXPECT_TRUE(eventually([&] { return failing("dead") == 1; }, 10s, 20ms)) << daemon.log();
  const auto attempts_when_dead = hooks.count("/fail");

  // A bad file: refused as a whole, with the reason in one line naming the setting.
  write_file(config, "allow-cidr = 127.0.0.0/8\nretry-schedule = 300ms\nmax-attempts = 0\n");
  daemon.send(SIGHUP);
  const std::string reason = "max-attempts in " + config + ": must be a whole number from 1 to 100";
  ASSERT_TRUE(eventually([&] { return daemon.log().find(reason) != std::string::npos; }, 10s, 10ms))
      << daemon.log();
  EXPECT_NE(daemon.log().find("settings not reloaded, the current ones stay in force"),
            std::string::npos);

  // Deliveries go on under the settings in force (one attempt each), not the defaults (10).
  insert_event(sql, uuid(1), "user.created");
  EXPECT_TRUE(hooks.wait_for_count(2, 30s, "/ok")) << daemon.log();
  EXPECT_TRUE(eventually([&] { return failing("dead") == 2; }, 10s, 20ms)) << daemon.log();
  EXPECT_EQ(hooks.count("/fail"), attempts_when_dead + 1) << daemon.log();
  EXPECT_EQ(sql.scalar("SELECT attempt_count FROM outboxd.deliveries WHERE webhook_id = $1 "
                       "ORDER BY event_id DESC LIMIT 1",
                       {uuid(11)}),
            1);

  daemon.send(SIGTERM);
  EXPECT_EQ(daemon.wait_for_exit(10s), 0) << daemon.log();
  std::remove(config.c_str());
}

}  // namespace
}  // namespace outboxd::test
