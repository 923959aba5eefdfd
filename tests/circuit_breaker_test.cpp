#include "outboxd/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <string>

namespace outboxd {
namespace {
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using admission = circuit_breaker::admission;
constexpr auto kDown = endpoint_signal::down;
constexpr auto kHealthy = endpoint_signal::healthy;
constexpr auto kNone = endpoint_signal::none;

TEST(classify_attempt, transport_failures_and_gateway_errors_say_the_endpoint_is_down) {
  for (const std::string code :
       {"connect_refused", "timeout", "tls", "dns", "dns_timeout", "reset", "io", "protocol",
        "tls_certificate_expired", "tls_hostname_mismatch", "tls_untrusted", "tls_protocol_version",
        "tls_client_certificate_rejected"}) {
    EXPECT_EQ(classify_attempt(0, code), kDown) << code;
  }
  EXPECT_EQ(classify_attempt(502, ""), kDown);
  EXPECT_EQ(classify_attempt(503, ""), kDown);
  EXPECT_EQ(classify_attempt(504, ""), kDown);
}

TEST(classify_attempt, any_other_answer_says_the_endpoint_is_up_even_if_the_message_failed) {
  for (const int status : {200, 201, 204, 301, 400, 401, 404, 410, 413, 429, 500, 501, 505, 599}) {
    EXPECT_EQ(classify_attempt(status, ""), kHealthy) << status;
  }
}

TEST(classify_attempt, attempts_that_never_asked_the_endpoint_say_nothing) {
  for (const std::string code :
       {"blocked_address", "https_required", "port_not_allowed", "invalid_header", "invalid_secret",
        "invalid_url", "payload_too_large", "internal", ""}) {
    EXPECT_EQ(classify_attempt(0, code), kNone) << code;
  }
}

circuit_breaker_options options() {
  return {.min_failures = 3, .failure_ratio = 0.5, .window = 10s, .cooldown = 5s};
}

TEST(circuit_breaker, opens_on_the_minimum_number_of_down_signals_when_they_are_the_majority) {
  circuit_breaker b(options());
  const auto now = clock::now();
  b.record(kDown, false, now);
  b.record(kDown, false, now);
  EXPECT_FALSE(b.is_open(now));  // two are below the minimum, even at 100 %
  EXPECT_EQ(b.recent_failures(now), 2);
  b.record(kDown, false, now);
  EXPECT_TRUE(b.is_open(now));
  EXPECT_EQ(b.retry_at(), now + 5s);
  EXPECT_EQ(b.try_acquire(now), admission::refused);
}

TEST(circuit_breaker, healthy_answers_keep_it_closed_below_the_ratio) {
  circuit_breaker b(options());
  const auto now = clock::now();
  // 5 down among 11: above the minimum, below half.
  for (int i = 0; i < 6; ++i) b.record(kHealthy, false, now);
  for (int i = 0; i < 5; ++i) b.record(kDown, false, now);
  EXPECT_FALSE(b.is_open(now));
  EXPECT_EQ(b.recent_failures(now), 5);
  b.record(kDown, false, now);  // 6 of 12: exactly the ratio
  EXPECT_TRUE(b.is_open(now));
}

TEST(circuit_breaker, a_server_answering_500_to_everything_is_up) {
  circuit_breaker b(options());
  auto now = clock::now();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(b.try_acquire(now), admission::normal);
    b.record(classify_attempt(500, ""), false, now);
    now += 10ms;
  }
  EXPECT_FALSE(b.is_open(now));
  EXPECT_EQ(b.recent_failures(now), 0);
}

TEST(circuit_breaker, signals_that_say_nothing_neither_count_nor_dilute) {
  circuit_breaker b(options());
  const auto now = clock::now();
  for (int i = 0; i < 100; ++i) b.record(kNone, false, now);
  b.record(kDown, false, now);
  b.record(kDown, false, now);
  b.record(kDown, false, now);
  EXPECT_TRUE(b.is_open(now));
}

TEST(circuit_breaker, down_signals_older_than_the_window_are_forgotten) {
  circuit_breaker b(options());
  auto now = clock::now();
  b.record(kDown, false, now);
  b.record(kDown, false, now);
  now += 11s;  // past the window (10 s, in buckets of 1 s)
  EXPECT_EQ(b.recent_failures(now), 0);
  EXPECT_TRUE(b.forgettable(now));
  b.record(kDown, false, now);
  b.record(kDown, false, now);
  EXPECT_FALSE(b.is_open(now));
  b.record(kDown, false, now + 1s);
  EXPECT_TRUE(b.is_open(now + 1s));
}

TEST(circuit_breaker, failures_spread_over_the_window_add_up) {
  circuit_breaker b(options());
  auto now = clock::now();
  b.record(kDown, false, now);
  now += 4s;
  b.record(kDown, false, now);
  now += 4s;
  EXPECT_EQ(b.recent_failures(now), 2);
  b.record(kDown, false, now);
  EXPECT_TRUE(b.is_open(now));
}

TEST(circuit_breaker, old_healthy_answers_stop_diluting_new_failures) {
  circuit_breaker b(options());
  auto now = clock::now();
  for (int i = 0; i < 50; ++i) b.record(kHealthy, false, now);
  now += 5s;
  for (int i = 0; i < 10; ++i) b.record(kDown, false, now);
  EXPECT_FALSE(b.is_open(now));  // 10 of 60
  now += 6s;                     // the healthy ones leave the window, the failures stay
  b.record(kDown, false, now);
  EXPECT_TRUE(b.is_open(now));
}

TEST(circuit_breaker, the_half_open_trial_decides) {
  circuit_breaker b(options());
  auto now = clock::now();
  for (int i = 0; i < 3; ++i) b.record(kDown, false, now);
  ASSERT_TRUE(b.is_open(now));
  EXPECT_EQ(b.try_acquire(now + 4s), admission::refused);
  now += 5s;
  EXPECT_FALSE(b.is_open(now));
  ASSERT_EQ(b.try_acquire(now), admission::trial);
  EXPECT_EQ(b.try_acquire(now), admission::refused);  // one trial at a time

  // none: the trial never asked the endpoint; the next request is the trial.
  b.record(kNone, true, now);
  ASSERT_EQ(b.try_acquire(now), admission::trial);
  // down: open for another cool-down.
  b.record(kDown, true, now);
  EXPECT_TRUE(b.is_open(now));
  EXPECT_EQ(b.retry_at(), now + 5s);
  EXPECT_EQ(b.try_acquire(now + 4s), admission::refused);
  now += 5s;
  ASSERT_EQ(b.try_acquire(now), admission::trial);
  // healthy: closed, with an empty window: it takes the minimum again to open.
  b.record(kHealthy, true, now);
  EXPECT_FALSE(b.is_open(now));
  EXPECT_EQ(b.try_acquire(now), admission::normal);
  EXPECT_EQ(b.recent_failures(now), 0);
  b.record(kDown, false, now);
  b.record(kDown, false, now);
  EXPECT_EQ(b.try_acquire(now), admission::normal);
  b.record(kDown, false, now);
  EXPECT_TRUE(b.is_open(now));
}

TEST(circuit_breaker, outcomes_of_requests_sent_before_it_opened_are_stale) {
  circuit_breaker b(options());
  auto now = clock::now();
  for (int i = 0; i < 3; ++i) b.record(kDown, false, now);
  ASSERT_TRUE(b.is_open(now));
  const auto until = b.retry_at();
  // A request that was already out comes back fine, or down: neither closes nor extends it.
  b.record(kHealthy, false, now + 1s);
  b.record(kDown, false, now + 2s);
  EXPECT_TRUE(b.is_open(now + 1s));
  EXPECT_EQ(b.retry_at(), until);
  // Half-open: only the trial's verdict counts, not a late non-trial answer.
  now += 5s;
  ASSERT_EQ(b.try_acquire(now), admission::trial);
  b.record(kHealthy, false, now);
  EXPECT_EQ(b.try_acquire(now), admission::refused);  // still waiting for the trial
  b.record(kDown, true, now);
  EXPECT_TRUE(b.is_open(now));
}

TEST(circuit_breaker, it_is_forgettable_once_nothing_is_left_to_remember) {
  circuit_breaker b(options());
  auto now = clock::now();
  EXPECT_TRUE(b.forgettable(now));
  b.record(kHealthy, false, now);
  EXPECT_TRUE(b.forgettable(now));  // healthy answers are no reason to keep state
  b.record(kDown, false, now);
  EXPECT_FALSE(b.forgettable(now));
  EXPECT_TRUE(b.forgettable(now + 11s));
  for (int i = 0; i < 3; ++i) b.record(kDown, false, now);
  ASSERT_TRUE(b.is_open(now));
  EXPECT_FALSE(b.forgettable(now + 5s));  // half-open: the next request must be a trial
  EXPECT_TRUE(b.forgettable(now + 15s));  // left alone for a window after its cool-down
  ASSERT_EQ(b.try_acquire(now + 15s), admission::trial);
  EXPECT_FALSE(b.forgettable(now + 15s));  // the trial is out
}

}  // namespace
}  // namespace outboxd
