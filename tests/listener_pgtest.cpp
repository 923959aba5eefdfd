// Waking: a committed outbox row wakes the dispatcher through LISTEN/NOTIFY long before the poll
// tick; when the LISTEN session dies, polling still dispatches and the listener comes back.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "outboxd/pg/listener.hpp"
#include "support/iam_rows.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;
using std::chrono::duration;
using std::chrono::steady_clock;

void terminate_backend(int pid) {
  sql_session admin(admin_database_url(), "outboxd test admin");
  ASSERT_EQ(admin.exec("SELECT pg_terminate_backend($1::int)", {std::to_string(pid)}).text(0, 0),
            "t");
}

TEST(listener, a_notification_wakes_the_dispatcher_well_under_the_poll_interval) {
  constexpr auto kPollInterval = 30s;
  constexpr int kEvents = 25;
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");

  auto config = test_config(db.url());
  config.poll_interval = kPollInterval;
  running_daemon daemon(config);
  ASSERT_TRUE(eventually([&] { return daemon.listen().listening(); }, 10s));
  // A warm-up event, so the dispatcher's first drain at start (which needs no wake-up) is over
  // before the measured ones are committed.
  insert_event(sql, uuid(1), "user.created");
  ASSERT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() == 1; }, 10s));
  const auto wakeups_before = daemon.dispatch().wakeups_by_signal();
  const auto notifications_before = daemon.listen().notifications_received();

  std::vector<double> latencies_ms;
  for (int i = 0; i < kEvents; ++i) {
    const auto before = daemon.dispatch().events_dispatched();
    const auto committed_at = steady_clock::now();
    insert_event(sql, uuid(1), "user.created");
    ASSERT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() > before; }, 5s,
                           std::chrono::microseconds(200)))
        << "event " << i << " was not dispatched within 5 s";
    latencies_ms.push_back(
        duration<double, std::milli>(steady_clock::now() - committed_at).count());
  }
  std::sort(latencies_ms.begin(), latencies_ms.end());
  const double p50 = latencies_ms[latencies_ms.size() / 2];
  const double max = latencies_ms.back();
  std::printf(
      "commit -> dispatched over %d events (poll interval 30 s): p50 %.2f ms, max %.2f ms\n",
      kEvents, p50, max);
  RecordProperty("wake_p50_ms", std::to_string(p50));
  RecordProperty("wake_max_ms", std::to_string(max));
  // Every one was woken by the notification: the poll tick was 30 s away.
  EXPECT_LT(max, 1000.0);
  EXPECT_GE(daemon.dispatch().wakeups_by_signal() - wakeups_before,
            static_cast<std::uint64_t>(kEvents));
  EXPECT_GE(daemon.listen().notifications_received() - notifications_before,
            static_cast<std::uint64_t>(kEvents));
}

TEST(listener, polling_dispatches_while_the_listen_session_is_gone_and_the_listener_comes_back) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  // The listener waits 1.5-3 s before reconnecting; the poll tick is 200 ms.
  auto config = test_config(db.url());
  config.poll_interval = 200ms;
  config.reconnect = {.initial = 3000ms, .max = 3000ms};
  running_daemon daemon(config);
  ASSERT_TRUE(eventually([&] { return daemon.listen().listening(); }, 10s));
  ASSERT_EQ(daemon.listen().sessions_started(), 1u);

  terminate_backend(daemon.listen().backend_pid());
  ASSERT_TRUE(eventually([&] { return !daemon.listen().listening(); }, 5s))
      << "the listener did not notice its session was terminated";

  insert_event(sql, uuid(1), "user.created");
  ASSERT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() == 1; }, 5s))
      << "polling did not dispatch the event";
  // Dispatched by the poll tick: the listener had not reconnected yet.
  EXPECT_EQ(daemon.listen().sessions_started(), 1u);

  ASSERT_TRUE(eventually(
      [&] { return daemon.listen().listening() && daemon.listen().sessions_started() == 2; }, 10s))
      << "the listener did not come back";
  const auto notifications = daemon.listen().notifications_received();
  insert_event(sql, uuid(1), "user.created");
  EXPECT_TRUE(
      eventually([&] { return daemon.listen().notifications_received() > notifications; }, 5s))
      << "the new LISTEN session receives no notifications";
  EXPECT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() == 2; }, 5s));
}

TEST(listener, the_dispatcher_reconnects_after_its_session_is_killed_and_catches_up) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  auto config = test_config(db.url());
  config.poll_interval = 200ms;
  running_daemon daemon(config);
  ASSERT_TRUE(eventually([&] { return daemon.dispatch().backend_pid() != 0; }, 10s));
  const int first_pid = daemon.dispatch().backend_pid();

  terminate_backend(first_pid);
  for (int i = 0; i < 3; ++i) insert_event(sql, uuid(1), "user.created");
  EXPECT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() == 3; }, 10s))
      << "events committed after the dispatcher's session died were not dispatched";
  EXPECT_NE(daemon.dispatch().backend_pid(), first_pid);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
}

}  // namespace
}  // namespace outboxd::test
