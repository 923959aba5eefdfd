// The real daemon against every hostile receiver at once: each attempt is recorded with its error
// code within its deadline and byte bounds, the daemon's memory stays bounded (measured from
// /proc while the hostile receivers run), and a healthy endpoint is served meanwhile.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/hostile_receivers.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

constexpr int kHostileEvents = 8;  // each fans out to every hostile webhook: 8 in flight per case
constexpr int kHealthyEvents = 20;
constexpr auto kRequestTimeout = 6s;
constexpr std::size_t kMaxResponseBytes = 4096;
// The daemon's resident memory may grow this much over its idle size with every hostile
// connection open at once (64 of them): per connection a head of at most 16 KiB and a body of at
// most --max-response-bytes, so a few MiB at worst; the rest is slack for the allocator (and
// sanitizer builds).
constexpr long kRssGrowthBoundKib = 16 * 1024;

// VmRSS of a process in KiB, or -1 when it cannot be read.
long resident_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(hostile_receiver, the_daemon_stays_bounded_and_serves_others_while_receivers_attack) {
  test_database db;
  auto& sql = db.sql();
  const auto cases = hostile_cases();
  // One receiver (one endpoint, with its own in-flight limit) per case, so every case has all its
  // attempts in flight at once.
  std::vector<std::unique_ptr<receiver>> hostile;
  receiver healthy;
  add_realm(sql, uuid(1), "acme");
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto id = uuid(100 + static_cast<int>(i));
    hostile.push_back(std::make_unique<receiver>());
    hostile.back()->react("/" + cases[i].name, {}, cases[i].what);
    add_webhook(sql, id, uuid(1), hostile.back()->url("/" + cases[i].name));
    subscribe(sql, id, "user.created");
  }
  add_webhook(sql, uuid(99), uuid(1), healthy.url("/ok"));
  subscribe(sql, uuid(99), "user.updated");

  // clang-format off
  daemon_process daemon({"run",
                         "--database-url", db.url(),
                         "--allow-cidr", "127.0.0.0/8",
                         "--poll-interval", "100ms",
                         "--http-request-timeout", std::to_string(kRequestTimeout.count()) + "s",
                         "--max-response-bytes", std::to_string(kMaxResponseBytes),
                         "--max-attempts", "1",
                         "--circuit-breaker-failures", "1000",
                         "--reconnect-min", "50ms"});
  // clang-format on
  const auto count = [&](const std::string& query) { return sql.scalar(query); };
  const auto healthy_succeeded = "SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = '" +
                                 uuid(99) + "' AND status = 'succeeded'";
  // Warmed up (sessions open, one delivery made) before the idle size is taken.
  insert_event(sql, uuid(1), "user.updated", "{}");
  ASSERT_TRUE(eventually([&] { return count(healthy_succeeded) == 1; }, 30s, 20ms)) << daemon.log();
  const long idle_kib = resident_kib(daemon.pid());
  ASSERT_GT(idle_kib, 0);

  for (int i = 0; i < kHostileEvents; ++i) insert_event(sql, uuid(1), "user.created", "{}");
  const auto hostile_deliveries = static_cast<std::int64_t>(cases.size()) * kHostileEvents;
  // Every hostile connection is open before the healthy events arrive.
  const auto hostile_requests = [&] {
    std::size_t total = 0;
    for (const auto& r : hostile) total += r->count();
    return static_cast<std::int64_t>(total);
  };
  ASSERT_TRUE(eventually([&] { return hostile_requests() >= hostile_deliveries; }, 30s, 20ms))
      << hostile_requests() << " of " << hostile_deliveries << "\n"
      << daemon.log();
  for (int i = 0; i < kHealthyEvents; ++i) insert_event(sql, uuid(1), "user.updated", "{}");

  long peak_kib = idle_kib;
  const auto sample = [&] { peak_kib = std::max(peak_kib, resident_kib(daemon.pid())); };

  // The healthy endpoint is served while the hostile attempts that only a deadline ends are
  // still in flight: all its deliveries succeed before any timeout is recorded.
  ASSERT_TRUE(eventually(
      [&] {
        sample();
        return count(healthy_succeeded) == kHealthyEvents + 1;
      },
      30s, 20ms))
      << daemon.log();
  EXPECT_EQ(count("SELECT count(*) FROM outboxd.attempts WHERE error_code = 'timeout'"), 0)
      << "the healthy endpoint waited for the hostile ones";
  EXPECT_LT(count("SELECT max(a.duration_ms) FROM outboxd.attempts a JOIN outboxd.deliveries d "
                  "ON d.id = a.delivery_id WHERE d.webhook_id = '" +
                  uuid(99) + "'"),
            2000);

  // Every hostile attempt is recorded, none later than its deadline.
  ASSERT_TRUE(eventually(
      [&] {
        sample();
        return count("SELECT count(*) FROM outboxd.attempts") ==
               hostile_deliveries + kHealthyEvents + 1;
      },
      kRequestTimeout + 30s, 20ms))
      << daemon.log();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    SCOPED_TRACE(c.name);
    const auto rows = sql.exec(
        "SELECT coalesce(a.error_code, ''), coalesce(a.status_code, 0), a.duration_ms, "
        "coalesce(octet_length(a.response_body), 0) FROM outboxd.attempts a "
        "JOIN outboxd.deliveries d ON d.id = a.delivery_id WHERE d.webhook_id = $1",
        {uuid(100 + static_cast<int>(i))});
    ASSERT_EQ(rows.rows(), kHostileEvents);
    for (int r = 0; r < rows.rows(); ++r) {
      EXPECT_EQ(rows.text(r, 0), c.error_code);
      EXPECT_EQ(rows.int64(r, 1), c.status);
      EXPECT_LE(rows.int64(r, 2), std::chrono::milliseconds(kRequestTimeout).count() + 1000);
      // Stored as text: a byte that is not UTF-8 may take up to 3 bytes (U+FFFD).
      EXPECT_LE(rows.int64(r, 3), static_cast<std::int64_t>(3 * kMaxResponseBytes));
    }
  }
  const long growth = peak_kib - idle_kib;
  std::printf(
      "daemon RSS: idle %ld KiB, peak %ld KiB during the hostile run (+%ld KiB; bound "
      "+%ld KiB)\n",
      idle_kib, peak_kib, growth, kRssGrowthBoundKib);
  EXPECT_LT(growth, kRssGrowthBoundKib);
}

}  // namespace
}  // namespace outboxd::test
