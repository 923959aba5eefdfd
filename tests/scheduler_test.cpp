#include "outboxd/scheduler.hpp"

#include <gtest/gtest.h>

#include <string>

namespace outboxd {
namespace {
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

using actions = scheduler<int>::actions;
constexpr auto kDown = endpoint_signal::down;
constexpr auto kHealthy = endpoint_signal::healthy;
constexpr auto kNone = endpoint_signal::none;

std::vector<int> started(const actions& out) {
  std::vector<int> items;
  for (const auto& s : out.start) items.push_back(s.item);
  return items;
}

scheduler_options small_limits() {
  return {.max_in_flight = 4,
          .max_in_flight_per_endpoint = 2,
          .max_queued_per_endpoint = 1,
          .breaker = {.min_failures = 3, .window = 10s, .cooldown = 10s}};
}

TEST(scheduler, one_slow_endpoint_cannot_take_every_slot) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  actions out;
  for (int i = 0; i < 4; ++i) s.submit("slow", i, now, out);
  // Two run, one waits, the fourth goes back to the database for a moment.
  EXPECT_EQ(started(out), (std::vector<int>{0, 1}));
  EXPECT_EQ(s.queued(), 1u);
  ASSERT_EQ(out.defer.size(), 1u);
  EXPECT_EQ(out.defer[0].item, 3);
  EXPECT_GT(out.defer[0].until, now);
  // Another endpoint still gets its slots.
  out = {};
  s.submit("fast", 10, now, out);
  EXPECT_EQ(started(out), (std::vector<int>{10}));
  EXPECT_EQ(s.capacity(), 0u);  // 3 in flight + 1 waiting = the global limit
}

TEST(scheduler, a_finished_request_starts_the_next_waiting_one) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  actions out;
  for (int i = 0; i < 3; ++i) s.submit("a", i, now, out);
  out = {};
  s.finish("a", false, kHealthy, now, out);
  EXPECT_EQ(started(out), (std::vector<int>{2}));
  EXPECT_EQ(s.in_flight(), 2u);
  EXPECT_EQ(s.queued(), 0u);
}

TEST(scheduler, the_breaker_opens_on_down_signals_defers_work_and_lets_one_trial_through) {
  scheduler<int> s(small_limits());
  auto now = clock::now();
  actions out;
  for (int i = 0; i < 3; ++i) {
    out = {};
    s.submit("down", i, now, out);
    ASSERT_EQ(out.start.size(), 1u);
    EXPECT_FALSE(out.start[0].trial);
    s.finish("down", false, kDown, now, out);
  }
  // The third down signal opened it, and said so once.
  ASSERT_TRUE(out.circuit_opened_until.has_value());
  EXPECT_EQ(*out.circuit_opened_until, now + 10s);
  EXPECT_TRUE(s.breaker_open("down", now));
  out = {};
  s.submit("down", 7, now, out);
  EXPECT_TRUE(out.start.empty());
  ASSERT_EQ(out.defer.size(), 1u);
  EXPECT_EQ(out.defer[0].until, now + 10s);

  // After the cool-down exactly one trial goes; others wait for its verdict.
  now += 10s;
  out = {};
  s.submit("down", 8, now, out);
  s.submit("down", 9, now, out);
  EXPECT_EQ(started(out), (std::vector<int>{8}));
  EXPECT_TRUE(out.start[0].trial);
  EXPECT_EQ(s.queued(), 1u);
  // The trial fails: open again, the waiting one goes back to the database.
  out = {};
  s.finish("down", true, kDown, now, out);
  EXPECT_TRUE(out.start.empty());
  ASSERT_EQ(out.defer.size(), 1u);
  EXPECT_EQ(out.defer[0].item, 9);
  EXPECT_EQ(out.defer[0].until, now + 10s);

  // A successful trial closes it.
  now += 10s;
  out = {};
  s.submit("down", 11, now, out);
  ASSERT_TRUE(out.start[0].trial);
  s.finish("down", true, kHealthy, now, out);
  EXPECT_FALSE(s.breaker_open("down", now));
}

TEST(scheduler, only_the_trial_decides_a_half_open_circuit) {
  auto limits = small_limits();
  limits.max_in_flight_per_endpoint = 3;
  scheduler<int> s(limits);
  auto now = clock::now();
  actions out;
  // One request is still out when two others fail and open the circuit.
  s.submit("x", 1, now, out);
  s.submit("x", 2, now, out);
  s.submit("x", 3, now, out);
  s.finish("x", false, kDown, now, out);
  s.finish("x", false, kDown, now, out);
  s.finish("x", false, kDown, now, out);  // third down signal: open
  now += 10s;
  out = {};
  s.submit("x", 4, now, out);  // the trial
  ASSERT_TRUE(out.start[0].trial);
  s.submit("x", 5, now, out);  // waits for the verdict
  EXPECT_EQ(s.queued(), 1u);
  // The trial succeeds: closed, and the waiting one goes.
  out = {};
  s.finish("x", true, kHealthy, now, out);
  EXPECT_FALSE(s.breaker_open("x", now));
  EXPECT_EQ(started(out), (std::vector<int>{5}));
}

TEST(scheduler, a_stale_success_does_not_close_an_open_circuit) {
  auto limits = small_limits();
  limits.max_in_flight_per_endpoint = 4;
  scheduler<int> s(limits);
  const auto now = clock::now();
  actions out;
  for (int i = 0; i < 4; ++i) s.submit("x", i, now, out);
  for (int i = 0; i < 3; ++i) s.finish("x", false, kDown, now, out);
  ASSERT_TRUE(s.breaker_open("x", now));
  // The request sent before the circuit opened comes back fine: old news, still open.
  s.finish("x", false, kHealthy, now, out);
  EXPECT_TRUE(s.breaker_open("x", now));
}

TEST(scheduler, attempts_that_never_reached_the_endpoint_do_not_trip_the_breaker) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  actions out;
  for (int i = 0; i < 10; ++i) {
    s.submit("x", i, now, out);
    s.finish("x", false, kNone, now, out);
  }
  EXPECT_FALSE(s.breaker_open("x", now));
}

TEST(scheduler, an_endpoint_that_answers_500_to_every_first_attempt_keeps_its_circuit_closed) {
  scheduler<int> s(small_limits());
  auto now = clock::now();
  actions out;
  // Every message fails once (500) and then succeeds: the endpoint is up throughout.
  for (int i = 0; i < 100; ++i) {
    out = {};
    s.submit("flaky", i, now, out);
    ASSERT_EQ(out.start.size(), 1u);
    s.finish("flaky", false, classify_attempt(i % 2 == 0 ? 500 : 200, ""), now, out);
    EXPECT_FALSE(out.circuit_opened_until.has_value());
    EXPECT_TRUE(out.defer.empty());
    now += 10ms;
  }
  EXPECT_FALSE(s.breaker_open("flaky", now));
}

TEST(scheduler, a_trial_that_never_asked_the_endpoint_hands_the_trial_to_the_next_request) {
  scheduler<int> s(small_limits());
  auto now = clock::now();
  actions out;
  for (int i = 0; i < 3; ++i) {
    s.submit("x", i, now, out);
    s.finish("x", false, kDown, now, out);
  }
  ASSERT_TRUE(s.breaker_open("x", now));
  now += 10s;
  out = {};
  s.submit("x", 10, now, out);
  s.submit("x", 11, now, out);
  ASSERT_EQ(started(out), (std::vector<int>{10}));
  ASSERT_TRUE(out.start[0].trial);
  out = {};
  s.finish("x", true, kNone, now, out);  // e.g. its address was refused before connecting
  ASSERT_EQ(started(out), (std::vector<int>{11}));
  EXPECT_TRUE(out.start[0].trial);
  EXPECT_FALSE(out.circuit_opened_until.has_value());
}

TEST(scheduler, the_endpoint_map_keeps_only_what_it_must_remember) {
  scheduler<int> s(small_limits());
  auto now = clock::now();
  actions out;
  // Healthy endpoints leave no trace once idle.
  for (int i = 0; i < 1000; ++i) {
    const auto endpoint = "ok" + std::to_string(i);
    s.submit(endpoint, i, now, out);
    s.finish(endpoint, false, kHealthy, now, out);
  }
  EXPECT_EQ(s.endpoints_tracked(), 0u);
  // One failure each: remembered for the window, as nothing else may come for them.
  for (int i = 0; i < 1000; ++i) {
    const auto endpoint = "failed" + std::to_string(i);
    s.submit(endpoint, i, now, out);
    s.finish(endpoint, false, kDown, now, out);
  }
  EXPECT_EQ(s.endpoints_tracked(), 1000u);
  // An open circuit is kept past its cool-down (the next request must be the trial).
  for (int i = 0; i < 3; ++i) {
    s.submit("open", i, now, out);
    s.finish("open", false, kDown, now, out);
  }
  ASSERT_TRUE(s.breaker_open("open", now));
  EXPECT_EQ(s.endpoints_tracked(), 1001u);
  // A window later any finish() sweeps out what has expired; the open circuit stays a window
  // longer after its cool-down.
  now += 11s;
  s.submit("other", 1, now, out);
  s.finish("other", false, kHealthy, now, out);
  EXPECT_EQ(s.endpoints_tracked(), 1u);
  now += 10s;
  s.submit("other", 2, now, out);
  s.finish("other", false, kHealthy, now, out);
  EXPECT_EQ(s.endpoints_tracked(), 0u);
  EXPECT_EQ(s.in_flight(), 0u);
}

TEST(scheduler, drain_hands_back_everything_waiting) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  actions out;
  for (int i = 0; i < 3; ++i) s.submit("a", i, now, out);
  EXPECT_EQ(s.drain_waiting(), (std::vector<int>{2}));
  EXPECT_EQ(s.queued(), 0u);
}

TEST(scheduler, a_webhook_limit_holds_that_webhooks_requests_while_others_on_its_endpoint_go) {
  scheduler<int> s({.max_in_flight = 10,
                    .max_in_flight_per_endpoint = 3,
                    .max_queued_per_endpoint = 10,
                    .breaker = {.min_failures = 3, .window = 10s, .cooldown = 10s}});
  const auto now = clock::now();
  const webhook_limit one{"a", 1};
  const webhook_limit unlimited{"b", 0};
  actions out;
  s.submit("host", 1, now, out, one);
  s.submit("host", 2, now, out, one);  // webhook a is at its limit: waits, though the host has room
  s.submit("host", 3, now, out, unlimited);
  EXPECT_EQ(started(out), (std::vector<int>{1, 3}));
  EXPECT_EQ(s.webhook_in_flight("a"), 1u);
  EXPECT_EQ(s.queued(), 1u);
  EXPECT_TRUE(out.defer.empty());

  // Webhook b's request ends: the slot goes to the next one whose webhook has room, never to a.
  out = {};
  s.submit("host", 4, now, out, unlimited);
  s.submit("host", 5, now, out, unlimited);  // the host is full now (1, 3, 4): waits behind 2
  EXPECT_EQ(started(out), (std::vector<int>{4}));
  out = {};
  s.finish("host", false, kHealthy, now, out, unlimited);
  EXPECT_EQ(started(out), (std::vector<int>{5}));
  EXPECT_EQ(s.webhook_in_flight("a"), 1u);

  // Webhook a's request ends: its waiting one starts.
  out = {};
  s.finish("host", false, kHealthy, now, out, one);
  EXPECT_EQ(started(out), (std::vector<int>{2}));
  EXPECT_EQ(s.webhook_in_flight("a"), 1u);
  EXPECT_EQ(s.queued(), 0u);
  out = {};
  s.finish("host", false, kHealthy, now, out, one);
  EXPECT_EQ(s.webhook_in_flight("a"), 0u);
  EXPECT_TRUE(out.start.empty());
}

TEST(scheduler, reports_a_circuit_closing_once_its_trial_finds_the_endpoint_up) {
  scheduler<int> s(small_limits());
  auto now = clock::now();
  actions out;
  for (int i = 0; i < 3; ++i) {
    s.submit("flaky", i, now, out);
    s.finish("flaky", false, kDown, now, out);
  }
  ASSERT_TRUE(out.circuit_opened_until.has_value());
  EXPECT_FALSE(out.circuit_closed);
  now += 10s;
  out = {};
  s.submit("flaky", 9, now, out);
  ASSERT_EQ(out.start.size(), 1u);
  ASSERT_TRUE(out.start[0].trial);
  s.finish("flaky", true, kHealthy, now, out);
  EXPECT_TRUE(out.circuit_closed);
  out = {};
  s.submit("flaky", 10, now, out);
  s.finish("flaky", false, kHealthy, now, out);
  EXPECT_FALSE(out.circuit_closed) << "a closed circuit reported closing again";
}

}  // namespace
}  // namespace outboxd
