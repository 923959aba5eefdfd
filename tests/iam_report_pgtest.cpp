// --report-to-iam: each webhook's last finished delivery lands in FerrisKey's webhook row,
// coalesced per webhook; without the flag the row is never touched.
#include <gtest/gtest.h>

#include <cstdio>

#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

struct scene {
  test_database db;
  receiver hooks;
  std::string realm = uuid(1);

  scene() { add_realm(db.sql(), realm, "acme"); }

  std::string webhook(int n, const std::string& path) {
    add_webhook(db.sql(), uuid(100 + n), realm, hooks.url(path));
    subscribe(db.sql(), uuid(100 + n), "user.created");
    return uuid(100 + n);
  }
  std::int64_t count(const std::string& query, std::initializer_list<pg::param> params = {}) {
    return db.sql().scalar(query, params);
  }
  bool finished(std::int64_t deliveries) {
    return eventually(
        [&] {
          return count(
                     "SELECT count(*) FROM outboxd.deliveries "
                     "WHERE status IN ('succeeded', 'dead')") == deliveries;
        },
        20s, 20ms);
  }
  pg::result iam_row(const std::string& webhook) {
    return db.sql().exec(
        "SELECT last_delivery_status, last_delivery_error, triggered_at IS NULL, "
        "abs(extract(epoch FROM triggered_at - (now() AT TIME ZONE 'UTC'))) < 60 "
        "FROM webhooks WHERE id = $1",
        {webhook});
  }
};

run_config config_for(const std::string& url, bool report) {
  auto config = test_config(url);
  config.report_to_iam = report;
  config.delivery.retry = {.delays = {100ms}, .max_attempts = 1, .jitter = 0};
  return config;
}

TEST(iam_report, the_webhook_row_shows_the_last_success_or_failure) {
  scene s;
  const auto good = s.webhook(1, "/good");
  const auto bad = s.webhook(2, "/bad");
  s.hooks.react("/bad", {}, reaction::with_status(503));
  {
    running_daemon daemon(config_for(s.db.url(), true));
    insert_event(s.db.sql(), s.realm, "user.created");
    ASSERT_TRUE(s.finished(2));
    ASSERT_TRUE(eventually([&] { return daemon.reporter().reports_written() >= 2; }, 10s));
  }
  const auto ok = s.iam_row(good);
  EXPECT_EQ(ok.text(0, 0), "succeeded");
  EXPECT_TRUE(ok.is_null(0, 1));
  EXPECT_FALSE(ok.boolean(0, 2));
  EXPECT_TRUE(ok.boolean(0, 3)) << "triggered_at is UTC, near now";
  const auto failed = s.iam_row(bad);
  EXPECT_EQ(failed.text(0, 0), "failed");
  EXPECT_TRUE(failed.text(0, 1).starts_with("HTTP 503")) << failed.text(0, 1);
  EXPECT_FALSE(failed.boolean(0, 2));
}

TEST(iam_report, without_the_flag_the_iam_row_is_untouched) {
  scene s;
  const auto good = s.webhook(1, "/good");
  {
    running_daemon daemon(config_for(s.db.url(), false));
    insert_event(s.db.sql(), s.realm, "user.created");
    ASSERT_TRUE(s.finished(1));
    EXPECT_FALSE(daemon.reporter().reporting());
  }  // stopping writes whatever a reporter still held: nothing may be left
  const auto row = s.iam_row(good);
  EXPECT_TRUE(row.is_null(0, 0));
  EXPECT_TRUE(row.is_null(0, 1));
  EXPECT_TRUE(row.boolean(0, 2));
}

TEST(iam_report, a_burst_of_finishes_for_one_webhook_is_a_few_reports) {
  scene s;
  const auto hook = s.webhook(1, "/hook");
  std::uint64_t written = 0, statements = 0, coalesced = 0;
  {
    running_daemon daemon(config_for(s.db.url(), true));
    s.db.sql().exec(
        "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
        "SELECT $1, 'user.created', $1, '{}' FROM generate_series(1, 100)",
        {s.realm});
    ASSERT_TRUE(s.finished(100));
    ASSERT_TRUE(eventually([&] { return daemon.reporter().reports_coalesced() > 0; }, 10s));
    written = daemon.reporter().reports_written();
    statements = daemon.reporter().report_statements();
    coalesced = daemon.reporter().reports_coalesced();
  }
  const auto span_ms = s.count(
      "SELECT (extract(epoch FROM max(updated_at) - min(updated_at)) * 1000)::bigint "
      "FROM outboxd.deliveries");
  std::printf("  100 finishes over %lld ms: %llu reports in %llu statements, %llu coalesced\n",
              static_cast<long long>(span_ms), static_cast<unsigned long long>(written),
              static_cast<unsigned long long>(statements),
              static_cast<unsigned long long>(coalesced));
  // One at once, then at most one per second of the burst, and the last at shutdown at most.
  EXPECT_GE(written, 1u);
  EXPECT_LE(written, static_cast<std::uint64_t>(span_ms / 1000 + 3));
  EXPECT_EQ(s.iam_row(hook).text(0, 0), "succeeded");
}

// The IAM holds its webhook row locked (its own long transaction): the report gives up after the
// daemon's lock timeout and is dropped, and delivery bookkeeping does not wait for it.
TEST(iam_report, a_report_that_cannot_be_written_never_holds_up_deliveries) {
  scene s;
  const auto hook = s.webhook(1, "/hook");
  sql_session iam(s.db.url(), "the IAM");
  iam.script("BEGIN; SELECT 1 FROM webhooks FOR UPDATE;");
  running_daemon daemon(config_for(s.db.url(), true));
  for (int i = 0; i < 3; ++i) {
    insert_event(s.db.sql(), s.realm, "user.created");
    ASSERT_TRUE(s.finished(i + 1)) << "delivery " << i << " waited for its report";
  }
  ASSERT_TRUE(eventually([&] { return daemon.reporter().reports_failed() >= 1; }, 10s));
  EXPECT_TRUE(daemon.reporter().reporting());
  iam.script("COMMIT");
  EXPECT_TRUE(s.iam_row(hook).is_null(0, 0));

  // Once the row is free again, the next finish is reported.
  insert_event(s.db.sql(), s.realm, "user.created");
  ASSERT_TRUE(s.finished(4));
  ASSERT_TRUE(eventually(
      [&] {
        const auto row = s.iam_row(hook);
        return !row.is_null(0, 0) && row.text(0, 0) == "succeeded";
      },
      10s, 20ms));
}

TEST(iam_report, an_adapter_without_the_function_stops_reporting_and_delivery_goes_on) {
  scene s;
  s.webhook(1, "/hook");
  s.db.sql().exec("DROP FUNCTION outboxd.report_delivery(uuid, text, text, timestamptz)");
  running_daemon daemon(config_for(s.db.url(), true));
  insert_event(s.db.sql(), s.realm, "user.created");
  ASSERT_TRUE(s.finished(1));
  ASSERT_TRUE(eventually([&] { return !daemon.reporter().reporting(); }, 10s));
  insert_event(s.db.sql(), s.realm, "user.created");
  EXPECT_TRUE(s.finished(2));
  EXPECT_EQ(daemon.reporter().reports_written(), 0u);
}

TEST(iam_report, the_function_cuts_values_to_the_columns_and_keeps_the_newest) {
  scene s;
  const auto hook = s.webhook(1, "/hook");
  auto& sql = s.db.sql();
  sql.exec("SELECT outboxd.report_delivery($1, repeat('s', 40), repeat('e', 1000), now())", {hook});
  auto row = s.iam_row(hook);
  EXPECT_EQ(row.text(0, 0).size(), 16u);
  EXPECT_EQ(row.text(0, 1).size(), 255u);
  // An older report (another daemon's, late) does not replace it.
  sql.exec("SELECT outboxd.report_delivery($1, 'succeeded', NULL, now() - interval '1 minute')",
           {hook});
  row = s.iam_row(hook);
  EXPECT_EQ(row.text(0, 0).size(), 16u);
  sql.exec("SELECT outboxd.report_delivery($1, 'succeeded', NULL, now() + interval '1 second')",
           {hook});
  row = s.iam_row(hook);
  EXPECT_EQ(row.text(0, 0), "succeeded");
  EXPECT_TRUE(row.is_null(0, 1));
}

}  // namespace
}  // namespace outboxd::test
