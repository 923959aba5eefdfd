#include "outboxd/retry_policy.hpp"

#include <gtest/gtest.h>

#include "outboxd/config.hpp"

namespace outboxd {
namespace {
using namespace std::chrono_literals;
using std::chrono::milliseconds;

TEST(retry_policy, default_schedule_is_standard_webhooks_with_twenty_percent_jitter) {
  const retry_policy policy{retry_options{}};
  const std::vector<milliseconds> expected{5s, 5min, 30min, 2h, 5h, 10h, 14h, 20h, 24h};
  for (int attempt = 1; attempt <= 9; ++attempt) {
    const auto scheduled = expected[static_cast<std::size_t>(attempt - 1)];
    EXPECT_EQ(policy.scheduled_delay(attempt), scheduled);
    for (int sample = 0; sample < 50; ++sample) {
      const auto decision = policy.decide(attempt, 500, std::nullopt);
      ASSERT_EQ(decision.what, retry_decision::next::retry);
      EXPECT_GE(decision.delay.count(), scheduled.count() * 8 / 10) << "attempt " << attempt;
      EXPECT_LE(decision.delay.count(), scheduled.count() * 12 / 10) << "attempt " << attempt;
    }
  }
  // The tenth attempt is the last.
  EXPECT_EQ(policy.decide(10, 500, std::nullopt).what, retry_decision::next::dead);
}

TEST(retry_policy, every_2xx_succeeds_and_nothing_else_does) {
  const retry_policy policy{retry_options{}};
  for (int status : {200, 201, 202, 204, 299}) {
    EXPECT_EQ(policy.decide(1, status, std::nullopt).what, retry_decision::next::succeeded);
  }
  for (int status : {0, 100, 199, 300, 301, 302, 304, 400, 404, 410, 429, 500, 503}) {
    EXPECT_EQ(policy.decide(1, status, std::nullopt).what, retry_decision::next::retry) << status;
  }
}

TEST(retry_policy, retry_after_is_honoured_for_429_and_503_up_to_the_schedules_cap) {
  const retry_policy policy{retry_options{.delays = {1s, 10s}, .max_attempts = 5, .jitter = 0}};
  EXPECT_EQ(policy.decide(1, 429, 7s).delay, 7s);  // longer than scheduled: wait that long
  EXPECT_EQ(policy.decide(1, 503, 7s).delay, 7s);
  EXPECT_EQ(policy.decide(2, 429, 3s).delay, 10s);  // shorter than scheduled: the schedule wins
  EXPECT_EQ(policy.decide(1, 429, 1h).delay, 10s);  // capped by the longest delay
  EXPECT_EQ(policy.decide(1, 500, 7s).delay, 1s);   // other statuses ignore it
  EXPECT_EQ(policy.decide(1, 0, 7s).delay, 1s);
}

TEST(retry_policy, attempts_past_the_schedule_repeat_its_last_delay) {
  const retry_policy policy{retry_options{.delays = {1s, 2s}, .max_attempts = 4, .jitter = 0}};
  EXPECT_EQ(policy.decide(3, 500, std::nullopt).delay, 2s);
  EXPECT_EQ(policy.decide(4, 500, std::nullopt).what, retry_decision::next::dead);
}

TEST(retry_after, reads_seconds_and_http_dates) {
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);  // 2023-11-14 22:13:20
  EXPECT_EQ(parse_retry_after("120", now), 120s);
  EXPECT_EQ(parse_retry_after(" 0 ", now), 0s);
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:14:20 GMT", now), 60s);
  EXPECT_EQ(parse_retry_after("Tuesday, 14-Nov-23 22:14:20 GMT", now), 60s);
  EXPECT_EQ(parse_retry_after("Tue Nov 14 22:14:20 2023", now), 60s);
  EXPECT_EQ(parse_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now), 0s);  // past: no wait
  EXPECT_EQ(parse_retry_after("-5", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("soon", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("99999999999", now), std::chrono::hours(24 * 365));
}

// Found by the retry_after fuzz target: converting these dates to system_clock's nanoseconds
// overflowed (undefined behaviour). A date no clock can hold is no date; one far ahead is a year.
TEST(retry_after, dates_beyond_the_clocks_range_overflow_nothing) {
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  EXPECT_EQ(parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT"), std::nullopt);
  EXPECT_EQ(parse_http_date("Mon, 01 Jan 0001 00:00:00 GMT"), std::nullopt);
  EXPECT_EQ(parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now), std::nullopt);
  EXPECT_EQ(parse_retry_after("Wed, 31 Dec 2200 00:00:00 GMT", now), std::chrono::hours(24 * 365));
  // 1680 is within the clock's range, but 343 years before `now`: the difference is not.
  EXPECT_EQ(parse_retry_after("Mon, 01 Jan 1680 00:00:00 GMT", now), 0s);
}

TEST(retry_schedule, parses_a_comma_list_and_refuses_garbage) {
  EXPECT_EQ(parse_retry_schedule("5s,5m,2h"), (std::vector<milliseconds>{5s, 5min, 2h}));
  EXPECT_THROW(parse_retry_schedule(""), config_error);
  EXPECT_THROW(parse_retry_schedule("5s,,5m"), config_error);
  EXPECT_THROW(parse_retry_schedule("5 seconds"), config_error);
}

}  // namespace
}  // namespace outboxd
