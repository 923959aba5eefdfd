// Reports to the IAM: at most one per webhook per gap, and always the latest.
#include "outboxd/report_coalescer.hpp"

#include <gtest/gtest.h>

namespace outboxd {
namespace {
using namespace std::chrono_literals;
using std::chrono::steady_clock;

delivery_report finished(std::string webhook, std::int64_t at_us,
                         std::string status = "succeeded") {
  return {.webhook_id = std::move(webhook), .status = std::move(status), .finished_at_us = at_us};
}

TEST(report_coalescer, a_first_report_goes_at_once) {
  report_coalescer reports(1s);
  const auto t0 = steady_clock::time_point{} + 1h;
  ASSERT_TRUE(reports.offer(finished("a", 1), t0));
  EXPECT_EQ(reports.next_due(), std::optional(steady_clock::time_point{}));
  const auto due = reports.take_due(t0);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].webhook_id, "a");
  EXPECT_FALSE(reports.next_due());
}

TEST(report_coalescer, a_burst_for_one_webhook_becomes_two_reports_the_second_the_latest) {
  report_coalescer reports(1s);
  const auto t0 = steady_clock::time_point{} + 1h;
  std::size_t sent = 0;
  delivery_report last;
  for (int i = 0; i < 100; ++i) {
    const auto now = t0 + i * 5ms;  // 100 finishes in half a second
    reports.offer(finished("a", 1000 + i, i == 99 ? "failed" : "succeeded"), now);
    for (auto& r : reports.take_due(now)) {
      ++sent;
      last = r;
    }
  }
  EXPECT_EQ(sent, 1u);
  EXPECT_EQ(reports.next_due(), std::optional(t0 + 1s));
  EXPECT_TRUE(reports.take_due(t0 + 999ms).empty());
  const auto due = reports.take_due(t0 + 1s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].finished_at_us, 1099);
  EXPECT_EQ(due[0].status, "failed");
  EXPECT_EQ(reports.coalesced(), 98u);
}

TEST(report_coalescer, webhooks_are_coalesced_apart) {
  report_coalescer reports(1s);
  const auto t0 = steady_clock::time_point{} + 1h;
  reports.offer(finished("a", 1), t0);
  EXPECT_EQ(reports.take_due(t0).size(), 1u);
  reports.offer(finished("a", 2), t0 + 10ms);
  reports.offer(finished("b", 3), t0 + 10ms);
  const auto due = reports.take_due(t0 + 10ms);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].webhook_id, "b");
  EXPECT_EQ(reports.waiting(), 1u);
}

TEST(report_coalescer, an_older_finish_offered_late_does_not_replace_a_newer_one) {
  report_coalescer reports(1s);
  const auto t0 = steady_clock::time_point{} + 1h;
  reports.offer(finished("a", 1), t0);
  reports.take_due(t0);
  reports.offer(finished("a", 50), t0 + 1ms);
  reports.offer(finished("a", 40), t0 + 2ms);
  const auto due = reports.take_due(t0 + 1s);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].finished_at_us, 50);
}

TEST(report_coalescer, quiet_webhooks_are_forgotten_and_the_table_is_bounded) {
  report_coalescer reports(1s, 2);
  const auto t0 = steady_clock::time_point{} + 1h;
  EXPECT_TRUE(reports.offer(finished("a", 1), t0));
  EXPECT_TRUE(reports.offer(finished("b", 1), t0));
  reports.take_due(t0);
  EXPECT_EQ(reports.tracked(), 2u);
  // Both within their gap: a third webhook has no room.
  EXPECT_FALSE(reports.offer(finished("c", 1), t0 + 1ms));
  EXPECT_EQ(reports.dropped(), 1u);
  // Once their gap is over, they are forgotten and make room.
  EXPECT_TRUE(reports.offer(finished("c", 2), t0 + 1s));
  EXPECT_EQ(reports.tracked(), 1u);
  EXPECT_EQ(reports.take_due(t0 + 1s).size(), 1u);
}

TEST(report_coalescer, take_all_ignores_the_gap) {
  report_coalescer reports(1s);
  const auto t0 = steady_clock::time_point{} + 1h;
  reports.offer(finished("a", 1), t0);
  reports.take_due(t0);
  reports.offer(finished("a", 2), t0 + 1ms);
  const auto all = reports.take_all();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].finished_at_us, 2);
  EXPECT_FALSE(reports.next_due());
}

}  // namespace
}  // namespace outboxd
