// The real binary under the signals operators and kernels send: SIGKILL with requests in flight
// loses nothing and records each delivery's success once; SIGTERM drains; a second SIGTERM exits.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>

#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

// A receiver that takes about a second per response, so requests are in flight when we strike.
reaction slow_ok() {
  return {.what = reaction::kind::dribble, .dribble_interval = std::chrono::milliseconds(10)};
}

struct crash_scene {
  test_database db;
  receiver hooks;

  explicit crash_scene(int events) {
    auto& sql = db.sql();
    add_realm(sql, uuid(1), "acme");
    add_webhook(sql, uuid(11), uuid(1), hooks.url("/slow"));
    subscribe(sql, uuid(11), "user.created");
    hooks.react("/slow", {}, slow_ok());
    sql.exec(
        "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
        "SELECT $1, 'user.created', $1, jsonb_build_object('n', n) FROM generate_series(1, $2) n",
        {uuid(1), std::to_string(events)});
  }

  // clang-format off
  std::vector<std::string> daemon_arguments(const std::string& request_timeout = "5s",
                                            const std::string& lease = "16s") const {
    return {"run",
            "--database-url", db.url(),
            "--allow-cidr", "127.0.0.0/8",
            "--poll-interval", "200ms",
            "--lease", lease,
            "--http-request-timeout", request_timeout,
            "--statement-timeout", "3s",
            "--max-in-flight-per-endpoint", "8",
            "--retry-schedule", "500ms",
            "--reconnect-min", "50ms",
            "--reconnect-max", "500ms",
            "--shutdown-timeout", "20s"};
  }
  // clang-format on

  std::int64_t count(const std::string& query) { return db.sql().scalar(query); }

  // A killed daemon's last statement may still be running in its server session; the database's
  // state is final only when those sessions are gone.
  bool sessions_gone(std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
          return count(
                     "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND application_name IN ('outboxd listener', 'outboxd dispatcher', "
                     "'outboxd delivery')") == 0;
        },
        timeout, std::chrono::milliseconds(20));
  }

  bool all_succeed(int deliveries, std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
          return count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") ==
                 deliveries;
        },
        timeout, std::chrono::milliseconds(50));
  }
};

TEST(crash, sigkill_with_requests_in_flight_loses_nothing_and_records_each_success_once) {
  constexpr int kEvents = 100;
  crash_scene s(kEvents);
  {
    daemon_process daemon(s.daemon_arguments());
    ASSERT_TRUE(s.hooks.wait_for_count(12, 30s)) << daemon.log();
    daemon.send(SIGKILL);
    ASSERT_EQ(daemon.wait_for_exit(5s), 128 + SIGKILL);
  }
  ASSERT_TRUE(s.sessions_gone(10s));
  const auto in_flight =
      s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'delivering'");
  std::printf("killed with %lld deliveries held under lease\n", static_cast<long long>(in_flight));
  ASSERT_GT(in_flight, 0) << "nothing was in flight: the crash path was not exercised";

  // Restart against a now-fast receiver; leases of the dead process expire and are taken over.
  s.hooks.react("/slow", {}, reaction::ok());
  daemon_process restarted(s.daemon_arguments());
  ASSERT_TRUE(s.all_succeed(kEvents, 60s)) << restarted.log();

  // Bookkeeping: one delivery per event, exactly one successful attempt each, and attempt numbers
  // 1..attempt_count each recorded exactly once (the killed ones as lease_expired).
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries"), kEvents);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries d WHERE "
                    "(SELECT count(*) FROM outboxd.attempts a "
                    " WHERE a.delivery_id = d.id AND a.succeeded) <> 1"),
            0);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries d WHERE "
                    "(SELECT count(*) FROM outboxd.attempts a WHERE a.delivery_id = d.id) "
                    "<> d.attempt_count OR (SELECT max(attempt_number) FROM outboxd.attempts a "
                    "WHERE a.delivery_id = d.id) <> d.attempt_count"),
            0);
  EXPECT_GE(s.count("SELECT count(*) FROM outboxd.attempts WHERE error_code = 'lease_expired'"),
            in_flight)
      << s.db.sql()
             .exec(
                 "SELECT string_agg(d.id || ':' || d.attempt_count || '/' || d.expired_attempts "
                 "|| '/' || d.claim_token || '[' || (SELECT string_agg(coalesce(a.error_code, "
                 "a.status_code::text), ',' ORDER BY a.attempt_number) FROM outboxd.attempts a "
                 "WHERE a.delivery_id = d.id) || ']', ' ') FROM outboxd.deliveries d "
                 "WHERE d.attempt_count > 1 OR d.claim_token > 1")
             .text(0, 0);

  // On the wire: every message arrived; a message that arrived twice carried the same id and body.
  std::map<std::string, std::vector<std::string>> bodies_by_id;
  for (const auto& r : s.hooks.requests("/slow")) {
    EXPECT_TRUE(verify_standard_webhooks(kFerrisKeySecret, r.headers, r.body));
    bodies_by_id[r.headers.at("webhook-id")].push_back(r.body);
  }
  EXPECT_EQ(bodies_by_id.size(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(s.count("SELECT count(DISTINCT message_id) FROM outboxd.deliveries"), kEvents);
  std::size_t duplicates = 0;
  for (const auto& [id, bodies] : bodies_by_id) {
    for (const auto& body : bodies) EXPECT_EQ(body, bodies.front()) << id;
    duplicates += bodies.size() - 1;
  }
  std::printf("%zu messages were received twice (at-least-once), each with its webhook-id\n",
              duplicates);
}

TEST(crash, a_lease_lost_in_a_crash_neither_delays_the_next_retry_nor_counts_toward_dead) {
  // Every message is in flight when the daemon is killed. After the restart each is sent again
  // (attempt 2), fails once (500) and must be retried after the schedule's FIRST delay (1 s), not
  // its second (10 min), and --max-attempts 2 must still allow that retry: the attempt lost in
  // the crash is recorded, but it was not a try.
  constexpr int kEvents = 8;
  crash_scene s(kEvents);
  s.hooks.react("/slow", {}, reaction{.what = reaction::kind::hang});
  // clang-format off
  const std::vector<std::string> arguments{
      "run", "--database-url", s.db.url(), "--allow-cidr", "127.0.0.0/8",
      "--poll-interval", "200ms", "--lease", "12s", "--http-request-timeout", "2s",
      "--http-connect-timeout", "1s",
      "--statement-timeout", "2s", "--retry-schedule", "1s,10m", "--max-attempts", "2",
      "--reconnect-min", "50ms", "--reconnect-max", "500ms"};
  // clang-format on
  {
    daemon_process daemon(arguments);
    ASSERT_TRUE(s.hooks.wait_for_count(kEvents, 30s)) << daemon.log();
    daemon.send(SIGKILL);
    ASSERT_EQ(daemon.wait_for_exit(5s), 128 + SIGKILL);
  }
  ASSERT_TRUE(s.sessions_gone(10s));
  ASSERT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'delivering'"),
            kEvents);
  s.hooks.react("/slow", std::vector<reaction>(kEvents, reaction::with_status(500)),
                reaction::ok());
  daemon_process restarted(arguments);
  ASSERT_TRUE(s.all_succeed(kEvents, 40s))
      << restarted.log()
      << "\ndead: " << s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'dead'");

  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries "
                    "WHERE attempt_count = 3 AND expired_attempts = 1"),
            kEvents);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts "
                    "WHERE attempt_number = 1 AND error_code = 'lease_expired'"),
            kEvents);
  // The gap between the failed try and the successful one follows the first delay (1 s +-20%).
  const auto longest_gap_ms = s.count(
      "SELECT (max(extract(epoch FROM ok.started_at - failed.started_at)) * 1000)::bigint "
      "FROM outboxd.attempts failed JOIN outboxd.attempts ok "
      "  ON ok.delivery_id = failed.delivery_id AND ok.attempt_number = 3 "
      "WHERE failed.attempt_number = 2 AND failed.status_code = 500");
  std::printf("longest gap between a failed retry and the next: %lld ms\n",
              static_cast<long long>(longest_gap_ms));
  EXPECT_GE(longest_gap_ms, 700);
  EXPECT_LE(longest_gap_ms, 5000);
}

TEST(crash, a_daemon_paused_past_its_lease_writes_nothing_when_it_resumes) {
  // Daemon A sends, then stalls (SIGSTOP, as a long pause or a PostgreSQL stall would) past its
  // lease. Daemon B takes the delivery over and succeeds. When A resumes, its outcome is
  // abandoned: it must not overwrite B's bookkeeping (before, A's late result replaced the
  // 'lease_expired' record of its attempt, and the delivery had two successful attempts).
  crash_scene s(1);
  s.hooks.react("/slow", {}, reaction{.what = reaction::kind::hang});
  // clang-format off
  const std::vector<std::string> arguments{
      "run", "--database-url", s.db.url(), "--allow-cidr", "127.0.0.0/8",
      "--poll-interval", "200ms", "--lease", "12s", "--http-request-timeout", "2s",
      "--http-connect-timeout", "1s", "--statement-timeout", "2s", "--retry-schedule", "500ms",
      "--reconnect-min", "50ms", "--reconnect-max", "500ms"};
  // clang-format on
  daemon_process a(arguments);
  ASSERT_TRUE(s.hooks.wait_for_count(1, 30s)) << a.log();
  a.send(SIGSTOP);
  s.hooks.react("/slow", {}, reaction::ok());

  daemon_process b(arguments);
  ASSERT_TRUE(s.all_succeed(1, 30s)) << b.log();
  const auto paused_for = std::chrono::steady_clock::now() - s.hooks.requests().front().received_at;
  EXPECT_GE(paused_for, 12s) << "B took over before A's lease ended";
  a.send(SIGCONT);
  ASSERT_TRUE(eventually([&] { return a.log().find("abandoned 1 outcome") != std::string::npos; },
                         10s, std::chrono::milliseconds(50)))
      << a.log();
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE succeeded"), 1);
  EXPECT_EQ(s.db.sql()
                .exec("SELECT string_agg(coalesce(error_code, status_code::text), ',' "
                      "ORDER BY attempt_number) FROM outboxd.attempts")
                .text(0, 0),
            "lease_expired,200");
}

TEST(crash, sigterm_finishes_in_flight_requests_and_hands_back_the_rest) {
  constexpr int kEvents = 40;
  crash_scene s(kEvents);
  {
    daemon_process daemon(s.daemon_arguments());
    ASSERT_TRUE(s.hooks.wait_for_count(4, 30s)) << daemon.log();
    daemon.send(SIGTERM);
    ASSERT_EQ(daemon.wait_for_exit(25s), 0) << daemon.log();
    EXPECT_NE(daemon.log().find("stopping"), std::string::npos);
  }
  // Every request that reached the receiver was finished and recorded; nothing is left leased,
  // and no attempt was spent without a record.
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'"),
            static_cast<std::int64_t>(s.hooks.count("/slow")));
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'delivering' "
                    "OR leased_until IS NOT NULL"),
            0);
  EXPECT_EQ(s.count("SELECT coalesce(sum(attempt_count), 0) FROM outboxd.deliveries"),
            s.count("SELECT count(*) FROM outboxd.attempts"));

  // The next daemon takes over cleanly: no lease had to expire.
  s.hooks.react("/slow", {}, reaction::ok());
  daemon_process next(s.daemon_arguments());
  ASSERT_TRUE(s.all_succeed(kEvents, 30s)) << next.log();
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE error_code = 'lease_expired'"), 0);
}

TEST(crash, a_second_sigterm_exits_at_once) {
  crash_scene s(4);
  s.hooks.react("/slow", {}, reaction{.what = reaction::kind::hang});
  daemon_process daemon(s.daemon_arguments(/*request_timeout=*/"20s", /*lease=*/"40s"));
  ASSERT_TRUE(s.hooks.wait_for_count(1, 30s)) << daemon.log();
  daemon.send(SIGTERM);
  // Draining waits for the hanging request: still running a moment later.
  EXPECT_FALSE(daemon.wait_for_exit(500ms).has_value());
  daemon.send(SIGTERM);
  const auto exit_code = daemon.wait_for_exit(2s);
  ASSERT_TRUE(exit_code.has_value()) << daemon.log();
  EXPECT_EQ(*exit_code, 1);
  EXPECT_NE(daemon.log().find("second signal"), std::string::npos) << daemon.log();
}

}  // namespace
}  // namespace outboxd::test
