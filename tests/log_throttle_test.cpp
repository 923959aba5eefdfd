// Per-key rate limiting of log lines: one line per key per interval, the suppressed count handed
// to the next allowed line, and a bounded table of keys.
#include "outboxd/log_throttle.hpp"

#include <gtest/gtest.h>

#include <string>

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;
using clock = log_throttle::clock;

const clock::time_point t0 = clock::time_point{} + 1000h;

TEST(log_throttle, one_line_per_key_per_interval_and_the_next_line_counts_the_suppressed) {
  log_throttle throttle({.interval = 60s});
  const auto first = throttle.allow("webhook-a", t0);
  EXPECT_TRUE(first);
  EXPECT_EQ(first.suppressed, 0u);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_FALSE(throttle.allow("webhook-a", t0 + i * 10s)) << i;
  }
  // Another key has its own window.
  EXPECT_TRUE(throttle.allow("webhook-b", t0 + 30s));
  EXPECT_FALSE(throttle.allow("webhook-a", t0 + 59s));

  const auto next = throttle.allow("webhook-a", t0 + 60s);
  EXPECT_TRUE(next);
  EXPECT_EQ(next.suppressed, 6u);
  // The window restarted at the allowed line, and the count with it.
  EXPECT_FALSE(throttle.allow("webhook-a", t0 + 119s));
  const auto third = throttle.allow("webhook-a", t0 + 120s);
  EXPECT_TRUE(third);
  EXPECT_EQ(third.suppressed, 1u);
  EXPECT_EQ(throttle.size(), 2u);
}

TEST(log_throttle, the_table_never_holds_more_than_max_keys_and_evicts_the_oldest) {
  log_throttle throttle({.interval = 60s, .max_keys = 4});
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(throttle.allow("k" + std::to_string(i), t0 + i * 1s));
  EXPECT_FALSE(throttle.allow("k0", t0 + 5s));  // k0 now holds one suppressed line
  // All four are in their interval; a fifth key pushes out the oldest, k0.
  EXPECT_TRUE(throttle.allow("k4", t0 + 6s));
  EXPECT_EQ(throttle.size(), 4u);
  EXPECT_EQ(throttle.suppressed_evicted(), 1u);
  EXPECT_FALSE(throttle.allow("k3", t0 + 7s)) << "a recent key must still be throttled";
  EXPECT_TRUE(throttle.allow("k0", t0 + 8s)) << "the evicted key starts afresh";

  for (int i = 0; i < 10'000; ++i) throttle.allow("many" + std::to_string(i), t0 + 10s);
  EXPECT_EQ(throttle.size(), 4u);
}

TEST(log_throttle, keys_whose_interval_is_over_and_that_held_nothing_back_are_forgotten) {
  log_throttle throttle({.interval = 60s, .max_keys = 4096});
  for (int i = 0; i < 1000; ++i) throttle.allow("old" + std::to_string(i), t0);
  EXPECT_TRUE(throttle.allow("held", t0 + 30s));
  EXPECT_FALSE(throttle.allow("held", t0 + 31s));  // held has something to report
  EXPECT_EQ(throttle.size(), 1001u);
  EXPECT_TRUE(throttle.allow("new", t0 + 60s));
  EXPECT_EQ(throttle.size(), 2u) << "only held (in its interval) and the new key remain";
  const auto held = throttle.allow("held", t0 + 90s);
  EXPECT_TRUE(held);
  EXPECT_EQ(held.suppressed, 1u);
  EXPECT_EQ(throttle.suppressed_evicted(), 0u);
}

}  // namespace
}  // namespace outboxd::test
