// Time is the database's: the real binary, its clock shifted by libfaketime 10 minutes either
// way, still waits the scheduled retry gap, signs with the database's time, and says that the
// host's clock is off.
#include <glob.h>
#include <gtest/gtest.h>

#include <charconv>
#include <csignal>
#include <memory>

#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

// Debian's libfaketime (package faketime), wherever the multiarch directory is.
std::string libfaketime() {
  glob_t found{};
  std::string path;
  if (::glob("/usr/lib/*/faketime/libfaketime.so.1", 0, nullptr, &found) == 0 &&
      found.gl_pathc > 0) {
    path = found.gl_pathv[0];
  }
  ::globfree(&found);
  return path;
}

struct skew_case {
  const char* offset;     // libfaketime's FAKETIME: the daemon's clock minus or plus 10 minutes
  const char* direction;  // as the daemon's warning words it

  friend void PrintTo(const skew_case& c, std::ostream* out) { *out << "FAKETIME=" << c.offset; }
};

class clock_skew : public ::testing::TestWithParam<skew_case> {
 protected:
  void SetUp() override {
    preload_ = libfaketime();
    ASSERT_FALSE(preload_.empty()) << "libfaketime not found: install the faketime package";
    add_realm(db.sql(), uuid(1), "acme");
    add_webhook(db.sql(), uuid(11), uuid(1), hooks.url("/hook"));
    subscribe(db.sql(), uuid(11), "user.created");
  }

  // The real binary with its wall clock shifted (only the wall clock, as on a host whose NTP is
  // broken: the monotonic clock is left alone).
  std::unique_ptr<daemon_process> skewed_daemon() const {
    // clang-format off
    return std::make_unique<daemon_process>(
        std::vector<std::string>{
            "run", "--database-url", db.url(), "--allow-cidr", "127.0.0.0/8",
            "--poll-interval", "200ms", "--retry-schedule", "3s", "--max-attempts", "3",
            "--lease", "12s", "--http-request-timeout", "2s", "--http-connect-timeout", "1s",
            "--statement-timeout", "2s", "--reconnect-min", "50ms", "--reconnect-max", "500ms"},
        std::vector<std::string>{"LD_PRELOAD=" + preload_,
                                 std::string("FAKETIME=") + GetParam().offset,
                                 "FAKETIME_DONT_FAKE_MONOTONIC=1"});
    // clang-format on
  }

  test_database db;
  receiver hooks;
  std::string preload_;
};

TEST_P(clock_skew, retry_gaps_follow_the_schedule_and_signatures_the_database_time) {
  hooks.react("/hook", {reaction::with_status(500)}, reaction::ok());
  const auto daemon_owner = skewed_daemon();
  auto& daemon = *daemon_owner;
  insert_event(db.sql(), uuid(1), "user.created");

  // Before, a daemon 10 minutes behind retried at once (its "now + 3 s" was long past for the
  // database), and one 10 minutes ahead waited 10 minutes and 3 seconds.
  ASSERT_TRUE(hooks.wait_for_count(2, 20s)) << "requests: " << hooks.count() << "\n"
                                            << daemon.log();
  const auto requests = hooks.requests("/hook");
  const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(requests[1].received_at -
                                                                         requests[0].received_at);
  std::printf("daemon clock %s: retry gap %lld ms (schedule: 3 s +-20%%)\n", GetParam().offset,
              static_cast<long long>(gap.count()));
  EXPECT_GE(gap, 2300ms);
  EXPECT_LE(gap, 6000ms);

  // The signed webhook-timestamp is the database's time (the same host's real clock here).
  for (const auto& request : requests) {
    const auto& header = request.headers.at("webhook-timestamp");
    long long signed_at = 0;
    std::from_chars(header.data(), header.data() + header.size(), signed_at);
    const auto real_now = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
    EXPECT_LE(std::llabs(real_now - signed_at), 5) << "webhook-timestamp " << header;
  }
  ASSERT_TRUE(eventually(
      [&] {
        return db.sql().scalar(
                   "SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") == 1;
      },
      10s, 20ms));
  const auto log = daemon.log();
  EXPECT_NE(log.find(std::string("s ") + GetParam().direction + " PostgreSQL's"), std::string::npos)
      << log;
}

TEST_P(clock_skew, a_lease_ends_after_its_length_by_the_database_clock) {
  // The request hangs, the daemon dies holding it; the next (equally skewed) daemon may take it
  // over only when the lease has run its 12 s by the database's clock, not 10 minutes early or
  // late.
  hooks.react("/hook", {}, reaction{.what = reaction::kind::hang});
  auto first = skewed_daemon();
  insert_event(db.sql(), uuid(1), "user.created");
  ASSERT_TRUE(hooks.wait_for_count(1, 20s)) << first->log();
  const auto lease_left_ms = db.sql().scalar(
      "SELECT (extract(epoch FROM leased_until - now()) * 1000)::bigint FROM outboxd.deliveries");
  EXPECT_GE(lease_left_ms, 9'000);
  EXPECT_LE(lease_left_ms, 12'500);
  first->send(SIGKILL);
  ASSERT_TRUE(first->wait_for_exit(5s).has_value());

  hooks.react("/hook", {}, reaction::ok());
  const auto second = skewed_daemon();
  ASSERT_TRUE(hooks.wait_for_count(2, 25s)) << second->log();
  const auto requests = hooks.requests("/hook");
  const auto taken_over_after = std::chrono::duration_cast<std::chrono::milliseconds>(
      requests[1].received_at - requests[0].received_at);
  std::printf("daemon clock %s: lease of 12 s taken over after %lld ms\n", GetParam().offset,
              static_cast<long long>(taken_over_after.count()));
  EXPECT_GE(taken_over_after, 11'500ms);
  EXPECT_LE(taken_over_after, 16'000ms);
}

INSTANTIATE_TEST_SUITE_P(ten_minutes, clock_skew,
                         ::testing::Values(skew_case{"-10m", "behind"},
                                           skew_case{"+10m", "ahead of"}),
                         [](const ::testing::TestParamInfo<skew_case>& tested) {
                           return std::string(tested.param.offset[0] == '-' ? "behind" : "ahead");
                         });

}  // namespace
}  // namespace outboxd::test
