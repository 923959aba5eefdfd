// The outcome classes of attempts, and what the metrics registry exports for what it is told.
#include "outboxd/metrics.hpp"

#include <gtest/gtest.h>

#include "outboxd/delivery_store.hpp"

namespace outboxd {
namespace {
using namespace std::chrono_literals;

TEST(attempt_classes, follow_the_status_code_when_there_is_a_response) {
  EXPECT_EQ(classify_attempt_outcome(200, ""), attempt_class::success);
  EXPECT_EQ(classify_attempt_outcome(204, ""), attempt_class::success);
  EXPECT_EQ(classify_attempt_outcome(299, ""), attempt_class::success);
  EXPECT_EQ(classify_attempt_outcome(429, ""), attempt_class::rate_limited);
  EXPECT_EQ(classify_attempt_outcome(400, ""), attempt_class::client_error);
  EXPECT_EQ(classify_attempt_outcome(410, ""), attempt_class::client_error);
  EXPECT_EQ(classify_attempt_outcome(499, ""), attempt_class::client_error);
  EXPECT_EQ(classify_attempt_outcome(500, ""), attempt_class::server_error);
  EXPECT_EQ(classify_attempt_outcome(503, ""), attempt_class::server_error);
  EXPECT_EQ(classify_attempt_outcome(302, ""), attempt_class::other);
  EXPECT_EQ(classify_attempt_outcome(101, ""), attempt_class::other);
  EXPECT_EQ(classify_attempt_outcome(600, ""), attempt_class::other);
}

TEST(attempt_classes, follow_the_error_code_without_a_response) {
  EXPECT_EQ(classify_attempt_outcome(0, "timeout"), attempt_class::timeout);
  EXPECT_EQ(classify_attempt_outcome(0, "connect_refused"), attempt_class::connect_error);
  EXPECT_EQ(classify_attempt_outcome(0, "dns"), attempt_class::connect_error);
  EXPECT_EQ(classify_attempt_outcome(0, "dns_timeout"), attempt_class::connect_error);
  EXPECT_EQ(classify_attempt_outcome(0, "reset"), attempt_class::connect_error);
  for (const auto* code :
       {"tls", "tls_certificate_expired", "tls_hostname_mismatch", "tls_untrusted",
        "tls_protocol_version", "tls_client_certificate_rejected"}) {
    EXPECT_EQ(classify_attempt_outcome(0, code), attempt_class::tls_error) << code;
  }
  for (const auto* code : {"blocked_address", "https_required", "port_not_allowed", "invalid_url",
                           "invalid_header", "invalid_secret", "payload_too_large"}) {
    EXPECT_EQ(classify_attempt_outcome(0, code), attempt_class::refused) << code;
  }
  for (const auto* code : {"webhook_deleted", "webhook_unsubscribed", "webhook_disabled"}) {
    EXPECT_EQ(classify_attempt_outcome(0, code), attempt_class::cancelled) << code;
  }
  EXPECT_EQ(classify_attempt_outcome(0, "lease_expired"), attempt_class::lease_expired);
  EXPECT_EQ(classify_attempt_outcome(0, "crash_loop"), attempt_class::lease_expired);
  EXPECT_EQ(classify_attempt_outcome(0, "io"), attempt_class::other);
  EXPECT_EQ(classify_attempt_outcome(0, "protocol"), attempt_class::other);
  EXPECT_EQ(classify_attempt_outcome(0, "internal"), attempt_class::other);
  EXPECT_EQ(classify_attempt_outcome(0, ""), attempt_class::other);
}

TEST(attempt_classes, have_distinct_label_values) {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kAttemptClasses; ++i) {
    names.insert(attempt_class_name(static_cast<attempt_class>(i)));
  }
  EXPECT_EQ(names.size(), kAttemptClasses);
  EXPECT_TRUE(names.contains("success"));
  EXPECT_TRUE(names.contains("server_error"));
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

TEST(metrics_registry, counts_written_outcomes_by_class_and_final_state) {
  metrics m;
  const auto now = std::chrono::system_clock::now();
  attempt_record ok;
  ok.status_code = 200;
  ok.duration = 120ms;
  ok.next = attempt_record::next_status::succeeded;
  ok.event_created = now - 2s;
  attempt_record failed;
  failed.status_code = 500;
  failed.duration = 30ms;
  failed.next = attempt_record::next_status::pending;
  attempt_record dead = failed;
  dead.next = attempt_record::next_status::dead;
  attempt_record cancelled;
  cancelled.error_code = "webhook_deleted";
  cancelled.next = attempt_record::next_status::cancelled;

  m.outcome_written(ok, now);
  m.outcome_written(failed, now);
  m.outcome_written(dead, now);
  m.outcome_written(cancelled, now);
  m.lease_expiry_recorded(true);
  m.deliveries_ended(delivery_end::cancelled, 3);

  EXPECT_EQ(m.attempts(attempt_class::success), 1u);
  EXPECT_EQ(m.attempts(attempt_class::server_error), 2u);
  EXPECT_EQ(m.attempts(attempt_class::cancelled), 1u);
  EXPECT_EQ(m.attempts(attempt_class::lease_expired), 1u);
  EXPECT_EQ(m.finished(delivery_end::succeeded), 1u);
  EXPECT_EQ(m.finished(delivery_end::dead), 2u);  // one after its attempts, one crash loop
  EXPECT_EQ(m.finished(delivery_end::cancelled), 4u);

  const auto text = m.serialize();
  EXPECT_TRUE(has_line(text, R"(outboxd_attempts_total{class="server_error"} 2)")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_deliveries_finished_total{state="cancelled"} 4)")) << text;
  // Only the three attempts that were sent have a duration; the success has a latency of 2 s.
  EXPECT_TRUE(has_line(text, "outboxd_attempt_duration_seconds_count 3")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_attempt_duration_seconds_bucket{le="0.025"} 0)")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_attempt_duration_seconds_bucket{le="0.05"} 2)")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_delivery_latency_seconds_count 1")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_delivery_latency_seconds_bucket{le="1"} 0)")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_delivery_latency_seconds_bucket{le="2.5"} 1)")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_build_info{version=\"" OUTBOXD_VERSION "\"} 1")) << text;
}

TEST(metrics_registry, mirrors_component_counters_and_caps_the_backlog) {
  metrics m;
  metrics_snapshot s;
  s.events_dispatched = 7;
  s.wakeups_notify = 2;
  s.wakeups_poll = 5;
  s.listener_subscribed = true;
  s.clock_offset_seconds = -0.25;
  s.purged_deliveries = 40;
  s.purged_attempts = 41;
  s.purged_events = 20;
  s.iam_reports_written = 3;
  s.iam_reports_failed = 1;
  s.sampled = metrics_snapshot::backlog{.outbox_rows = metrics::kBacklogCap + 5,
                                        .due_deliveries = 3,
                                        .oldest_event_age_seconds = 1.5};
  m.update(s);
  s.events_dispatched = 9;
  m.update(s);
  m.update(s);  // a scrape with nothing new changes nothing
  const auto text = m.serialize();
  EXPECT_TRUE(has_line(text, "outboxd_events_dispatched_total 9")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_dispatch_wakeups_total{source="poll"} 5)")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_listener_subscribed 1")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_database_clock_offset_seconds -0.25")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_outbox_backlog 10000")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_due_deliveries 3")) << text;
  EXPECT_TRUE(has_line(text, "outboxd_oldest_undispatched_event_age_seconds 1.5")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_retention_purged_rows_total{table="deliveries"} 40)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_retention_purged_rows_total{table="attempts"} 41)"))
      << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_retention_purged_rows_total{table="events"} 20)")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_iam_reports_total{result="written"} 3)")) << text;
  EXPECT_TRUE(has_line(text, R"(outboxd_iam_reports_total{result="failed"} 1)")) << text;
}

}  // namespace
}  // namespace outboxd
