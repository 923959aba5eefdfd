// The circuit breaker end to end: it opens on endpoints that are down (no connection), never on
// a server that is up but refuses some messages, and it closes once the endpoint is back.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <map>
#include <set>
#include <thread>

#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct scene {
  test_database db;
  std::string realm = uuid(1);

  scene() { add_realm(db.sql(), realm, "acme"); }

  std::string webhook(int n, const std::string& url, const std::string& event = "user.created") {
    add_webhook(db.sql(), uuid(100 + n), realm, url);
    subscribe(db.sql(), uuid(100 + n), event);
    return uuid(100 + n);
  }
  std::int64_t count(const std::string& query, std::initializer_list<pg::param> params = {}) {
    return db.sql().scalar(query, params);
  }
};

run_config quick_retries(const std::string& url, std::vector<milliseconds> delays,
                         int max_attempts) {
  auto config = test_config(url);
  config.delivery.retry = {.delays = std::move(delays), .max_attempts = max_attempts, .jitter = 0};
  return config;
}

long long ms_since(steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(steady_clock::now() - start).count();
}

std::string header_or_empty(const received_request& request, const std::string& name) {
  const auto found = request.headers.find(name);
  return found == request.headers.end() ? std::string() : found->second;
}

TEST(breaker, a_receiver_that_fails_every_first_attempt_gets_every_message_on_its_retry) {
  constexpr int kMessages = 200;
  scene s;
  receiver hooks;
  s.webhook(1, hooks.url("/hook"));
  // 500 to the first attempt of each message (told apart by webhook-id), 200 to its retries.
  std::set<std::string> answered;  // touched only by the receiver, under its lock
  hooks.react_with("/hook", [&answered](const received_request& request) {
    const bool first = answered.insert(header_or_empty(request, "webhook-id")).second;
    return first ? reaction::with_status(500) : reaction::ok();
  });
  for (int i = 0; i < kMessages; ++i) insert_event(s.db.sql(), s.realm, "user.created");
  // The breaker with its flag defaults: 5 down signals, half of the window, 30 s window and
  // cool-down. Retries after 200 ms.
  auto config = quick_retries(s.db.url(), {200ms}, 5);
  config.delivery.engine.scheduling.breaker = {};
  const auto start = steady_clock::now();
  running_daemon daemon(config);

  const auto succeeded = [&] {
    return s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'");
  };
  const bool all = eventually([&] { return succeeded() == kMessages; }, 30s, 20ms);
  const auto elapsed = ms_since(start);
  std::printf(
      "[breaker] first-attempt 500s: %lld of %d messages succeeded in %lld ms; %zu requests, "
      "%lld attempt rows, %llu circuit openings\n",
      static_cast<long long>(succeeded()), kMessages, elapsed, hooks.count(),
      static_cast<long long>(s.count("SELECT count(*) FROM outboxd.attempts")),
      static_cast<unsigned long long>(daemon.deliver().circuit_openings()));
  std::fflush(stdout);
  ASSERT_TRUE(all);
  EXPECT_EQ(daemon.deliver().circuit_openings(), 0u);
  // Each message: one 500, then one 200; no attempt spent, none skipped.
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE attempt_count <> 2"), 0);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE status_code = 500 AND "
                    "attempt_number = 1"),
            kMessages);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE status_code = 200 AND "
                    "attempt_number = 2 AND succeeded"),
            kMessages);
  EXPECT_EQ(hooks.count(), static_cast<std::size_t>(2 * kMessages));
}

TEST(breaker, one_event_type_always_failing_does_not_hold_back_another_on_the_same_endpoint) {
  constexpr int kEach = 40;
  constexpr int kMaxAttempts = 4;
  const std::vector<milliseconds> schedule{300ms, 600ms, 900ms};
  scene s;
  receiver hooks;
  // Two webhooks on one receiver server: one endpoint, two paths.
  s.webhook(1, hooks.url("/users"), "user.created");
  s.webhook(2, hooks.url("/roles"), "role.created");
  hooks.react("/roles", {}, reaction::with_status(500));
  for (int i = 0; i < kEach; ++i) {
    insert_event(s.db.sql(), s.realm, "role.created");
    insert_event(s.db.sql(), s.realm, "user.created");
  }
  auto config = quick_retries(s.db.url(), schedule, kMaxAttempts);
  config.delivery.engine.scheduling.breaker = {};  // the flag defaults
  const auto start = steady_clock::now();
  running_daemon daemon(config);

  const auto users_done = [&] {
    return s.count(
        "SELECT count(*) FROM outboxd.deliveries d JOIN outboxd.events e ON e.id = d.event_id "
        "WHERE e.event = 'user.created' AND d.status = 'succeeded'");
  };
  const bool users = eventually([&] { return users_done() == kEach; }, 10s, 10ms);
  const auto users_ms = ms_since(start);
  const auto roles_dead = [&] {
    return s.count(
        "SELECT count(*) FROM outboxd.deliveries d JOIN outboxd.events e ON e.id = d.event_id "
        "WHERE e.event = 'role.created' AND d.status = 'dead'");
  };
  const bool roles = eventually([&] { return roles_dead() == kEach; }, 30s, 20ms);
  const auto roles_ms = ms_since(start);
  std::printf(
      "[breaker] mixed event types: %lld of %d user.created succeeded in %lld ms; %lld of %d "
      "role.created dead after their attempts in %lld ms; %zu role requests; %llu circuit "
      "openings\n",
      static_cast<long long>(users_done()), kEach, users_ms, static_cast<long long>(roles_dead()),
      kEach, roles_ms, hooks.count("/roles"),
      static_cast<unsigned long long>(daemon.deliver().circuit_openings()));
  std::fflush(stdout);
  ASSERT_TRUE(users);
  EXPECT_LT(users_ms, 5000);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts a JOIN outboxd.deliveries d ON "
                    "d.id = a.delivery_id JOIN outboxd.events e ON e.id = d.event_id "
                    "WHERE e.event = 'user.created'"),
            kEach);  // one attempt each
  ASSERT_TRUE(roles);
  EXPECT_EQ(daemon.deliver().circuit_openings(), 0u);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries d JOIN outboxd.events e ON "
                    "e.id = d.event_id WHERE e.event = 'role.created' AND d.attempt_count <> $1",
                    {std::to_string(kMaxAttempts)}),
            0);

  // Every role.created message was retried on schedule: gap n follows delay n.
  std::map<std::string, std::vector<steady_clock::time_point>> arrivals;
  for (const auto& r : hooks.requests("/roles")) {
    arrivals[header_or_empty(r, "webhook-id")].push_back(r.received_at);
  }
  ASSERT_EQ(arrivals.size(), static_cast<std::size_t>(kEach));
  std::vector<milliseconds> worst_late(schedule.size(), 0ms);
  std::vector<milliseconds> earliest(schedule.size(), 1h);
  for (const auto& [id, times] : arrivals) {
    ASSERT_EQ(times.size(), static_cast<std::size_t>(kMaxAttempts)) << id;
    for (std::size_t n = 0; n + 1 < times.size(); ++n) {
      const auto gap = std::chrono::duration_cast<milliseconds>(times[n + 1] - times[n]);
      earliest[n] = std::min(earliest[n], gap);
      worst_late[n] = std::max(worst_late[n], gap - schedule[n]);
      EXPECT_GE(gap, schedule[n] - 10ms) << id << " gap " << n;
      EXPECT_LT(gap, schedule[n] + 1500ms) << id << " gap " << n;
    }
  }
  for (std::size_t n = 0; n < schedule.size(); ++n) {
    std::printf(
        "[breaker] role.created retry %zu: scheduled %lld ms, shortest gap %lld ms, "
        "latest %lld ms after schedule\n",
        n + 1, static_cast<long long>(schedule[n].count()),
        static_cast<long long>(earliest[n].count()), static_cast<long long>(worst_late[n].count()));
  }
  std::fflush(stdout);
}

TEST(breaker, an_endpoint_that_refuses_connections_opens_the_circuit_until_it_is_back) {
  constexpr int kMessages = 20;
  constexpr int kMinFailures = 5;
  constexpr std::size_t kPerEndpoint = 4;
  constexpr auto kCooldown = 3s;
  scene s;
  // A loopback port where nothing listens yet: bind one, note it, close it.
  std::uint16_t port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    port = probe.local_endpoint().port();
  }
  s.webhook(1, "http://127.0.0.1:" + std::to_string(port) + "/hook");
  for (int i = 0; i < kMessages; ++i) insert_event(s.db.sql(), s.realm, "user.created");
  auto config = quick_retries(s.db.url(), {200ms}, 1000);
  config.delivery.engine.scheduling.max_in_flight_per_endpoint = kPerEndpoint;
  config.delivery.engine.scheduling.breaker = {
      .min_failures = kMinFailures, .failure_ratio = 0.5, .window = 30s, .cooldown = kCooldown};
  const auto attempts = [&] { return s.count("SELECT count(*) FROM outboxd.attempts"); };
  running_daemon daemon(config);

  ASSERT_TRUE(eventually([&] { return daemon.deliver().circuit_openings() >= 1; }, 10s, 5ms));
  const auto opened = steady_clock::now();
  // What was in flight when it opened finishes; then count what opening it cost.
  ASSERT_TRUE(eventually(
      [&] {
        return daemon.on_loop([&] {
          return daemon.deliver().in_flight() == 0 && daemon.store().queued_writes() == 0;
        });
      },
      5s, 5ms));
  const auto before_open = attempts();
  EXPECT_GE(before_open, kMinFailures);
  EXPECT_LE(before_open, kMinFailures + static_cast<std::int64_t>(kPerEndpoint));
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE error_code <> 'connect_refused'"),
            0);

  // Open: nothing is sent, no attempt is spent, until the cool-down ends. (A fixed stretch of
  // observation, bounded, to see that nothing happens.)
  const auto quiet_until = opened + kCooldown - 300ms;
  bool quiet = true;
  while (steady_clock::now() < quiet_until) {
    if (attempts() != before_open || daemon.deliver().circuit_openings() != 1) quiet = false;
    std::this_thread::sleep_for(50ms);
  }
  const auto during_cooldown = attempts() - before_open;
  EXPECT_TRUE(quiet) << during_cooldown << " attempts during the cool-down";

  // The endpoint comes back; the next trial closes the circuit and the backlog drains.
  receiver hooks({.port = port});
  const auto back = steady_clock::now();
  const auto at_back = attempts();
  const bool first = hooks.wait_for_count(1, kCooldown + 2s);
  const auto first_ms = ms_since(back);
  const bool all = eventually(
      [&] {
        return s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") ==
               kMessages;
      },
      kCooldown + 10s, 10ms);
  const auto all_ms = ms_since(back);
  std::printf(
      "[breaker] connection refused: circuit opened after %lld attempts (min %d, %zu in flight "
      "at most); %lld attempts during the %lld ms cool-down; %lld attempts before the receiver "
      "came back; first request %lld ms and all %d delivered %lld ms after it came back; %llu "
      "circuit openings (re-openings after failed trials included), %lld attempt rows\n",
      static_cast<long long>(before_open), kMinFailures, kPerEndpoint,
      static_cast<long long>(during_cooldown),
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(kCooldown).count()),
      static_cast<long long>(at_back), first_ms, kMessages, all_ms,
      static_cast<unsigned long long>(daemon.deliver().circuit_openings()),
      static_cast<long long>(attempts()));
  std::fflush(stdout);
  ASSERT_TRUE(first);
  EXPECT_LE(first_ms, std::chrono::duration_cast<milliseconds>(kCooldown + 1s).count());
  ASSERT_TRUE(all);
  EXPECT_EQ(hooks.count(), static_cast<std::size_t>(kMessages));
  // Refused attempts recorded as such, then one success per message.
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE succeeded"), kMessages);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE NOT succeeded AND "
                    "error_code <> 'connect_refused'"),
            0);
}

}  // namespace
}  // namespace outboxd::test
