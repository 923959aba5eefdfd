// Per-webhook policies end to end: set with `outboxd policy set` (the real binary), applied by a
// running daemon to the webhook that has one and to no other. Also the daemon's record of open
// circuits, which `outboxd webhooks` reads.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

struct scene {
  test_database db;
  std::string realm = uuid(1);

  scene() { add_realm(db.sql(), realm, "acme"); }

  std::string webhook(int n, const std::string& url) {
    add_webhook(db.sql(), uuid(100 + n), realm, url);
    subscribe(db.sql(), uuid(100 + n), "user.created");
    return uuid(100 + n);
  }
  void policy(const std::vector<std::string>& args) {
    std::vector<std::string> command{"policy", "set"};
    command.insert(command.end(), args.begin(), args.end());
    const auto out = run_binary(command, {"OUTBOXD_DATABASE_URL=" + db.url()});
    ASSERT_EQ(out.exit_code, 0) << out.err;
  }
  std::int64_t count(const std::string& query) { return db.sql().scalar(query); }
  std::string status_of(const std::string& webhook) {
    return std::string(
        db.sql()
            .exec("SELECT status FROM outboxd.deliveries WHERE webhook_id = $1::uuid", {webhook})
            .text(0, 0));
  }
  std::int64_t attempts_of(const std::string& webhook) {
    return db.sql().scalar(
        "SELECT count(*) FROM outboxd.attempts AS a JOIN outboxd.deliveries AS d "
        "ON d.id = a.delivery_id WHERE d.webhook_id = $1::uuid",
        {webhook});
  }
};

run_config quick_retries(const std::string& url) {
  auto config = test_config(url);
  config.delivery.retry = {.delays = {50ms}, .max_attempts = 10, .jitter = 0};
  return config;
}

TEST(webhook_policy, max_attempts_and_retry_schedule_apply_to_their_webhook_only) {
  scene s;
  receiver hooks;
  hooks.react("/limited", {}, reaction::with_status(500));
  hooks.react("/default", {}, reaction::with_status(500));
  hooks.react("/slow", {}, reaction::with_status(500));
  const auto limited = s.webhook(1, hooks.url("/limited"));
  const auto by_default = s.webhook(2, hooks.url("/default"));
  const auto slow = s.webhook(3, hooks.url("/slow"));
  s.policy({limited, "--max-attempts", "2"});
  s.policy({slow, "--retry-schedule", "1h"});
  insert_event(s.db.sql(), s.realm, "user.created");
  running_daemon daemon(quick_retries(s.db.url()));  // 10 attempts, 50 ms apart

  ASSERT_TRUE(eventually([&] { return s.status_of(limited) == "dead"; }, 20s, 10ms));
  EXPECT_EQ(s.attempts_of(limited), 2);
  EXPECT_EQ(hooks.count("/limited"), 2u);
  // The webhook on the daemon's settings goes on retrying past 2 attempts, to its 10th.
  ASSERT_TRUE(eventually([&] { return s.status_of(by_default) == "dead"; }, 20s, 10ms));
  EXPECT_EQ(s.attempts_of(by_default), 10);
  EXPECT_EQ(hooks.count("/limited"), 2u) << "the dead delivery was sent again";
  // Its own schedule: tried once, next due in about an hour, not 50 ms.
  EXPECT_EQ(hooks.count("/slow"), 1u);
  EXPECT_EQ(s.status_of(slow), "pending");
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = '" + slow +
                    "' AND next_attempt_at > now() + interval '50 minutes'"),
            1);
}

TEST(webhook_policy, max_in_flight_holds_one_webhook_while_its_endpoint_allows_more) {
  constexpr int kEvents = 6;
  scene s;
  receiver hooks;  // one endpoint: scheme, host and port
  const reaction slow_ok{.status = 200, .body = "ok", .delay = 300ms};
  hooks.react("/one", {}, slow_ok);
  hooks.react("/many", {}, slow_ok);
  const auto one = s.webhook(1, hooks.url("/one"));
  s.webhook(2, hooks.url("/many"));
  s.policy({one, "--max-in-flight", "1"});
  for (int i = 0; i < kEvents; ++i) insert_event(s.db.sql(), s.realm, "user.created");
  running_daemon daemon(quick_retries(s.db.url()));  // 16 in flight per endpoint

  ASSERT_TRUE(eventually(
      [&] {
        return s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") ==
               2 * kEvents;
      },
      30s, 10ms));
  EXPECT_EQ(hooks.max_concurrent("/one"), 1u);
  EXPECT_GE(hooks.max_concurrent("/many"), 2u) << "the endpoint never had two requests at once";
  EXPECT_EQ(hooks.count("/one"), static_cast<std::size_t>(kEvents));
}

TEST(webhook_policy, an_open_circuit_is_recorded_for_the_cli_and_removed_when_it_closes) {
  scene s;
  std::uint16_t port = 0;  // a loopback port where nothing listens yet
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  const auto endpoint = "http://127.0.0.1:" + std::to_string(port);
  const auto hook = s.webhook(1, endpoint + "/hook");
  for (int i = 0; i < 3; ++i) insert_event(s.db.sql(), s.realm, "user.created");
  auto config = quick_retries(s.db.url());
  config.delivery.retry.max_attempts = 100;
  config.delivery.engine.scheduling.breaker = {
      .min_failures = 2, .failure_ratio = 0.5, .window = 30s, .cooldown = 1s};
  running_daemon daemon(config);

  const auto circuits = [&] {
    return s.count("SELECT count(*) FROM outboxd.open_circuits WHERE endpoint = '" + endpoint +
                   "' AND opened_by = 'test' AND open_until > opened_at");
  };
  ASSERT_TRUE(eventually([&] { return circuits() == 1; }, 10s, 10ms));
  const auto shown = run_binary({"webhooks", "--json"}, {"OUTBOXD_DATABASE_URL=" + s.db.url()});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find(R"("webhook_id":")" + hook), std::string::npos);
  EXPECT_TRUE(shown.out.find(R"("circuit":"open")") != std::string::npos ||
              shown.out.find(R"("circuit":"half-open")") != std::string::npos)
      << shown.out;

  receiver back({.port = port});
  ASSERT_TRUE(eventually(
      [&] {
        return s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") == 3;
      },
      15s, 10ms));
  EXPECT_TRUE(eventually([&] { return s.count("SELECT count(*) FROM outboxd.open_circuits") == 0; },
                         5s, 10ms));
}

}  // namespace
}  // namespace outboxd::test
