#include "outboxd/scheduler.hpp"

#include <gtest/gtest.h>

namespace outboxd {
namespace {
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

scheduler_options small_limits() {
  return {.max_in_flight = 4,
          .max_in_flight_per_endpoint = 2,
          .max_queued_per_endpoint = 1,
          .breaker = {.failure_threshold = 3, .cooldown = 10s}};
}

TEST(scheduler, one_slow_endpoint_cannot_take_every_slot) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  scheduler<int>::actions out;
  for (int i = 0; i < 4; ++i) s.submit("slow", i, now, out);
  // Two run, one waits, the fourth goes back to the database for a moment.
  EXPECT_EQ(out.start, (std::vector<int>{0, 1}));
  EXPECT_EQ(s.queued(), 1u);
  ASSERT_EQ(out.defer.size(), 1u);
  EXPECT_EQ(out.defer[0].item, 3);
  EXPECT_GT(out.defer[0].until, now);
  // Another endpoint still gets its slots.
  out = {};
  s.submit("fast", 10, now, out);
  EXPECT_EQ(out.start, (std::vector<int>{10}));
  EXPECT_EQ(s.capacity(), 0u);  // 3 in flight + 1 waiting = the global limit
}

TEST(scheduler, a_finished_request_starts_the_next_waiting_one) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  scheduler<int>::actions out;
  for (int i = 0; i < 3; ++i) s.submit("a", i, now, out);
  out = {};
  s.finish("a", true, true, now, out);
  EXPECT_EQ(out.start, (std::vector<int>{2}));
  EXPECT_EQ(s.in_flight(), 2u);
  EXPECT_EQ(s.queued(), 0u);
}

TEST(scheduler, the_breaker_opens_after_n_failures_defers_work_and_lets_one_trial_through) {
  scheduler<int> s(small_limits());
  auto now = clock::now();
  scheduler<int>::actions out;
  for (int i = 0; i < 3; ++i) {
    s.submit("down", i, now, out);
    s.finish("down", true, false, now, out);
  }
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
  EXPECT_EQ(out.start, (std::vector<int>{8}));
  EXPECT_EQ(s.queued(), 1u);
  // The trial fails: open again, the waiting one goes back to the database.
  out = {};
  s.finish("down", true, false, now, out);
  EXPECT_TRUE(out.start.empty());
  ASSERT_EQ(out.defer.size(), 1u);
  EXPECT_EQ(out.defer[0].item, 9);
  EXPECT_EQ(out.defer[0].until, now + 10s);

  // A successful trial closes it.
  now += 10s;
  out = {};
  s.submit("down", 11, now, out);
  s.finish("down", true, true, now, out);
  EXPECT_FALSE(s.breaker_open("down", now));
}

TEST(scheduler, attempts_that_never_reached_the_endpoint_do_not_trip_the_breaker) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  scheduler<int>::actions out;
  for (int i = 0; i < 10; ++i) {
    s.submit("x", i, now, out);
    s.finish("x", false, false, now, out);
  }
  EXPECT_FALSE(s.breaker_open("x", now));
}

TEST(scheduler, drain_hands_back_everything_waiting) {
  scheduler<int> s(small_limits());
  const auto now = clock::now();
  scheduler<int>::actions out;
  for (int i = 0; i < 3; ++i) s.submit("a", i, now, out);
  EXPECT_EQ(s.drain_waiting(), (std::vector<int>{2}));
  EXPECT_EQ(s.queued(), 0u);
}

}  // namespace
}  // namespace outboxd
