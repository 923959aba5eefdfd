// The delivery engine end to end: committed events reach a real HTTP receiver on loopback, signed,
// retried and recorded exactly once, whatever the receiver does.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <set>
#include <sstream>

#include "outboxd/message.hpp"
#include "support/dispatch_once.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

// A realm with one webhook per path of the receiver, each subscribed to user.created.
struct scene {
  test_database db;
  receiver hooks;
  std::string realm = uuid(1);

  scene() { add_realm(db.sql(), realm, "acme"); }

  std::string webhook(int n, const std::string& path, const std::string& secret = kFerrisKeySecret,
                      const std::string& headers = "{}") {
    return webhook_at(n, hooks.url(path), secret, headers);
  }
  std::string webhook_at(int n, const std::string& url,
                         const std::string& secret = kFerrisKeySecret,
                         const std::string& headers = "{}") {
    add_webhook(db.sql(), uuid(100 + n), realm, url, secret, headers);
    subscribe(db.sql(), uuid(100 + n), "user.created");
    return uuid(100 + n);
  }
  std::int64_t event(const std::string& data = R"({"username": "alice"})") {
    return insert_event(db.sql(), realm, "user.created", data);
  }
  std::int64_t count(const std::string& query, std::initializer_list<pg::param> params = {}) {
    return db.sql().scalar(query, params);
  }
  bool eventually_count(const std::string& query, std::int64_t expected,
                        std::chrono::milliseconds timeout = 10s) {
    return eventually([&] { return count(query) == expected; }, timeout, 20ms);
  }
};

// Quick retries so tests see several attempts.
run_config quick_retries(const std::string& url, int max_attempts = 5) {
  auto config = test_config(url);
  config.delivery.retry = {.delays = {100ms}, .max_attempts = max_attempts, .jitter = 0};
  return config;
}

TEST(delivery, a_delivery_verifies_under_both_schemes_and_is_recorded_once) {
  scene s;
  const auto webhook = s.webhook(1, "/hook", kFerrisKeySecret, R"({"X-Tenant": "acme"})");
  running_daemon daemon(test_config(s.db.url()));
  const auto event = s.event(R"({"username": "alice", "roles": ["admin"]})");

  ASSERT_TRUE(s.hooks.wait_for_count(1, 10s));
  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'", 1));
  const auto request = s.hooks.requests().front();
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/hook");
  EXPECT_TRUE(verify_standard_webhooks(kFerrisKeySecret, request.headers, request.body));
  EXPECT_TRUE(verify_ferriskey(kFerrisKeySecret, request.headers, request.body));
  EXPECT_EQ(request.headers.at("content-type"), "application/json");
  EXPECT_EQ(request.headers.at("x-tenant"), "acme");

  // The body is exactly {event, timestamp, resource_id, data}, with the event's own commit time
  // and data.
  const auto row = s.db.sql().exec(
      "SELECT d.message_id::text, "
      "       to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
      "       e.resource_id::text, e.data::text "
      "FROM outboxd.deliveries d JOIN outboxd.events e ON e.id = d.event_id WHERE e.id = $1",
      {std::to_string(event)});
  const std::string expected_body = R"({"event":"user.created","timestamp":")" +
                                    std::string(row.text(0, 1)) + R"(","resource_id":")" +
                                    std::string(row.text(0, 2)) + R"(","data":)" +
                                    std::string(row.text(0, 3)) + "}";
  EXPECT_EQ(request.body, expected_body);
  EXPECT_EQ(request.headers.at("webhook-id"), row.text(0, 0));
  EXPECT_EQ(request.headers.at("x-ferriskey-delivery-id"), row.text(0, 0));

  const auto attempt = s.db.sql().exec(
      "SELECT attempt_number, status_code, succeeded, response_body, error_code IS NULL "
      "FROM outboxd.attempts");
  ASSERT_EQ(attempt.rows(), 1);
  EXPECT_EQ(attempt.int64(0, 0), 1);
  EXPECT_EQ(attempt.int64(0, 1), 200);
  EXPECT_TRUE(attempt.boolean(0, 2));
  EXPECT_EQ(attempt.text(0, 3), "ok");
  EXPECT_TRUE(attempt.boolean(0, 4));
  EXPECT_EQ(
      s.count("SELECT attempt_count FROM outboxd.deliveries WHERE webhook_id = $1", {webhook}), 1);
  EXPECT_EQ(s.hooks.count(), 1u);
}

TEST(delivery, a_whsec_secret_signs_with_its_decoded_key) {
  scene s;
  const std::string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  s.webhook(1, "/hook", secret);
  running_daemon daemon(test_config(s.db.url()));
  s.event();
  ASSERT_TRUE(s.hooks.wait_for_count(1, 10s));
  const auto request = s.hooks.requests().front();
  EXPECT_TRUE(verify_standard_webhooks(secret, request.headers, request.body));
  EXPECT_TRUE(verify_ferriskey(secret, request.headers, request.body));
}

TEST(delivery, every_subscriber_gets_the_same_body_bytes) {
  scene s;
  for (int i = 0; i < 3; ++i) s.webhook(i, "/hook" + std::to_string(i));
  running_daemon daemon(test_config(s.db.url()));
  s.event();
  ASSERT_TRUE(s.hooks.wait_for_count(3, 10s));
  const auto requests = s.hooks.requests();
  std::set<std::string> bodies, ids;
  for (const auto& r : requests) {
    bodies.insert(r.body);
    ids.insert(r.headers.at("webhook-id"));
  }
  EXPECT_EQ(bodies.size(), 1u);
  EXPECT_EQ(ids.size(), 3u);  // one message per (event, webhook)
}

TEST(delivery, failures_are_retried_with_the_same_message_and_body_until_success) {
  scene s;
  s.webhook(1, "/flaky");
  s.hooks.react("/flaky", {reaction::with_status(500), reaction::with_status(502)});
  running_daemon daemon(quick_retries(s.db.url()));
  s.event();

  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'", 1));
  const auto requests = s.hooks.requests("/flaky");
  ASSERT_EQ(requests.size(), 3u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.headers.at("webhook-id"), requests[0].headers.at("webhook-id"));
    EXPECT_EQ(r.body, requests[0].body);
    EXPECT_TRUE(verify_standard_webhooks(kFerrisKeySecret, r.headers, r.body));
  }
  const auto attempts = s.db.sql().exec(
      "SELECT attempt_number, status_code, succeeded FROM outboxd.attempts ORDER BY 1");
  ASSERT_EQ(attempts.rows(), 3);
  EXPECT_EQ(attempts.int64(0, 1), 500);
  EXPECT_EQ(attempts.int64(1, 1), 502);
  EXPECT_EQ(attempts.int64(2, 1), 200);
  EXPECT_FALSE(attempts.boolean(0, 2));
  EXPECT_TRUE(attempts.boolean(2, 2));
  EXPECT_EQ(s.count("SELECT attempt_count FROM outboxd.deliveries"), 3);
}

TEST(delivery, it_gives_up_after_the_last_attempt_and_the_delivery_is_dead) {
  scene s;
  s.webhook(1, "/down");
  s.hooks.react("/down", {}, reaction::with_status(500));
  running_daemon daemon(quick_retries(s.db.url(), /*max_attempts=*/3));
  s.event();
  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'dead'", 1));
  EXPECT_EQ(s.hooks.count("/down"), 3u);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE NOT succeeded"), 3);
  EXPECT_EQ(s.count("SELECT attempt_count FROM outboxd.deliveries"), 3);
}

TEST(delivery, a_redirect_is_a_failure_and_is_not_followed) {
  scene s;
  s.webhook(1, "/moved");
  s.hooks.react("/moved", {},
                reaction{.status = 301, .body = "moved", .location = s.hooks.url("/elsewhere")});
  running_daemon daemon(quick_retries(s.db.url(), 2));
  s.event();
  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'dead'", 1));
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE status_code = 301"), 2);
  EXPECT_EQ(s.hooks.count("/elsewhere"), 0u);
}

TEST(delivery, gone_disables_the_webhook_and_cancels_its_pending_deliveries) {
  scene s;
  const auto gone = s.webhook(1, "/gone");
  const auto other = s.webhook(2, "/other");
  s.hooks.react("/gone", {}, reaction::with_status(410));
  const auto first = s.event();
  const auto second = s.event();
  ASSERT_EQ(dispatch_once(s.db.url()).deliveries, 4);
  // The second event's delivery to the gone webhook is not due yet: it must be cancelled, not sent.
  s.db.sql().exec(
      "UPDATE outboxd.deliveries SET next_attempt_at = now() + interval '1 hour' "
      "WHERE event_id = $1 AND webhook_id = $2",
      {std::to_string(second), gone});

  running_daemon daemon(test_config(s.db.url()));
  ASSERT_TRUE(s.eventually_count("SELECT count(*) FROM outboxd.disabled_webhooks", 1));
  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'cancelled'", 1));
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'dead' AND "
                    "event_id = $1 AND webhook_id = $2",
                    {std::to_string(first), gone}),
            1);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'cancelled' AND "
                    "event_id = $1 AND webhook_id = $2",
                    {std::to_string(second), gone}),
            1);
  EXPECT_EQ(s.hooks.count("/gone"), 1u);

  // New events no longer fan out to it; the other webhook is untouched.
  const auto third = s.event();
  ASSERT_TRUE(s.eventually_count(
      "SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded' AND webhook_id = '" +
          other + "'",
      3));
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE event_id = $1",
                    {std::to_string(third)}),
            1);
}

TEST(delivery, retry_after_on_429_and_503_delays_the_next_attempt) {
  scene s;
  s.webhook(1, "/busy");
  s.hooks.react("/busy", {reaction{.status = 429, .body = "slow down", .retry_after = "2"},
                          reaction{.status = 503, .body = "later", .retry_after = "1"}});
  auto config = quick_retries(s.db.url());
  // Retry-After is capped by the schedule's longest delay (here 10 s, never reached otherwise).
  config.delivery.retry.delays = {100ms, 100ms, 100ms, 10s};
  running_daemon daemon(config);
  s.event();
  ASSERT_TRUE(s.hooks.wait_for_count(3, 15s, "/busy"));
  const auto requests = s.hooks.requests("/busy");
  const auto gap = [&](int i) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(requests[i + 1].received_at -
                                                                 requests[i].received_at);
  };
  // Scheduled delay 100 ms; the receiver asked for 2 s, then 1 s.
  EXPECT_GE(gap(0), 1950ms);
  EXPECT_LT(gap(0), 5s);
  EXPECT_GE(gap(1), 950ms);
  EXPECT_LT(gap(1), 4s);
}

TEST(delivery, a_hanging_endpoint_times_out_while_other_endpoints_carry_on) {
  scene s;
  s.webhook(1, "/hang");
  s.webhook(2, "/fast");
  s.hooks.react("/hang", {}, reaction{.what = reaction::kind::hang});
  running_daemon daemon(test_config(s.db.url()));  // request timeout 2 s
  s.event();
  ASSERT_TRUE(s.hooks.wait_for_count(1, 5s, "/fast"));
  // The fast one is done long before the hanging one's deadline.
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE error_code = 'timeout'"), 0);
  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.attempts WHERE error_code = 'timeout'", 1));
  EXPECT_GE(s.count("SELECT duration_ms FROM outboxd.attempts WHERE error_code = 'timeout'"), 2000);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'pending'"), 1);
}

TEST(delivery, transport_failures_are_recorded_with_their_error_codes) {
  scene s;
  s.webhook(1, "/reset");
  s.hooks.react("/reset", {}, reaction{.what = reaction::kind::reset});
  // A port where nothing listens: bind one, note it, close it.
  int closed_port = 0;
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
    closed_port = probe.local_endpoint().port();
  }
  s.webhook_at(2, "http://127.0.0.1:" + std::to_string(closed_port) + "/hook");
  s.webhook_at(3, "http://10.255.0.1/private");  // private, and not in --allow-cidr
  running_daemon daemon(test_config(s.db.url()));
  s.event();
  ASSERT_TRUE(s.eventually_count("SELECT count(*) FROM outboxd.attempts", 3));
  const auto codes = s.db.sql().exec(
      "SELECT string_agg(error_code, ',' ORDER BY error_code) FROM outboxd.attempts");
  EXPECT_EQ(codes.text(0, 0), "blocked_address,connect_refused,reset");
}

TEST(delivery, response_bytes_are_read_and_stored_only_up_to_the_bound) {
  scene s;
  s.webhook(1, "/endless");
  s.webhook(2, "/big");
  s.hooks.react("/endless", {}, reaction{.what = reaction::kind::endless});
  s.hooks.react("/big", {}, reaction{.status = 500, .body = std::string(5000, 'x')});
  auto config = test_config(s.db.url());
  config.delivery.http.max_response_bytes = 1000;
  running_daemon daemon(config);
  s.event();
  ASSERT_TRUE(s.eventually_count("SELECT count(*) FROM outboxd.attempts", 2));
  EXPECT_EQ(s.count("SELECT max(length(response_body)) FROM outboxd.attempts"), 1000);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE status_code = 200"), 1);
}

TEST(delivery, a_payload_at_the_bound_is_sent_and_one_byte_more_is_dead) {
  scene s;
  s.webhook(1, "/hook");
  auto config = test_config(s.db.url());
  // data = {"p": "xxx..."}; choose its length so the body is exactly the bound.
  const auto body_size = [&](std::size_t filler) {
    const std::string data = R"({"p": ")" + std::string(filler, 'x') + R"("})";
    return build_body({.event = "user.created",
                       .timestamp = "2026-11-29T16:00:00.123456Z",
                       .resource_id = s.realm,
                       .data = data})
        .size();
  };
  config.delivery.engine.max_payload_bytes = body_size(1000);
  running_daemon daemon(config);
  const auto at_bound = s.event(R"({"p": ")" + std::string(1000, 'x') + R"("})");
  const auto over = s.event(R"({"p": ")" + std::string(1001, 'x') + R"("})");
  ASSERT_TRUE(s.eventually_count(
      "SELECT count(*) FROM outboxd.deliveries WHERE status IN ('succeeded', 'dead')", 2));
  EXPECT_EQ(s.hooks.count(), 1u);
  EXPECT_EQ(s.hooks.requests().front().body.size(), config.delivery.engine.max_payload_bytes);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded' AND "
                    "event_id = $1",
                    {std::to_string(at_bound)}),
            1);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts a JOIN outboxd.deliveries d ON "
                    "d.id = a.delivery_id WHERE d.event_id = $1 AND d.status = 'dead' AND "
                    "a.error_code = 'payload_too_large'",
                    {std::to_string(over)}),
            1);
}

TEST(delivery, an_open_circuit_defers_deliveries_without_spending_attempts) {
  scene s;
  receiver up;  // another server: an endpoint is scheme, host and port
  const auto down = s.webhook(1, "/down");
  s.webhook_at(2, up.url("/up"));
  s.hooks.react("/down", {}, reaction::with_status(503));
  auto config = quick_retries(s.db.url(), 10);
  config.delivery.engine.scheduling.max_in_flight_per_endpoint = 1;
  config.delivery.engine.scheduling.breaker = {.min_failures = 2, .cooldown = 1h};
  config.delivery.engine.claim_batch = 2;  // most of the backlog is never claimed
  for (int i = 0; i < 10; ++i) s.event();
  ASSERT_EQ(dispatch_once(s.db.url()).deliveries, 20);
  running_daemon daemon(config);

  // Every delivery to the dead endpoint ends up parked until the cool-down ends, most of them
  // by one statement when the circuit opened rather than claimed and handed back one by one.
  ASSERT_TRUE(s.eventually_count(
      "SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = '" + down +
          "' AND status = 'pending' AND next_attempt_at > now() + interval '30 minutes'",
      10));
  EXPECT_EQ(s.hooks.count("/down"), 2u);  // only the two failures that opened the circuit
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts a JOIN outboxd.deliveries d ON "
                    "d.id = a.delivery_id WHERE d.webhook_id = $1",
                    {down}),
            2);
  EXPECT_EQ(
      s.count("SELECT sum(attempt_count) FROM outboxd.deliveries WHERE webhook_id = $1", {down}),
      2);
  // The healthy endpoint got everything meanwhile.
  EXPECT_TRUE(up.wait_for_count(10, 10s, "/up"));
}

TEST(delivery, claiming_pauses_at_the_bound_on_unwritten_outcomes_and_resumes) {
  constexpr int kEvents = 50;
  constexpr std::size_t kBound = 5;
  scene s;
  s.webhook(1, "/hook");
  // Outcomes cannot be written while this trigger refuses attempt rows (claims insert none).
  s.db.sql().script(R"sql(
    CREATE FUNCTION refuse_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'attempts are refused by the test'; END $$;
    CREATE TRIGGER refuse BEFORE INSERT ON outboxd.attempts
      FOR EACH ROW EXECUTE FUNCTION refuse_attempts();
  )sql");
  auto config = test_config(s.db.url());
  config.delivery.engine.max_unwritten_outcomes = kBound;
  running_daemon daemon(config);
  for (int i = 0; i < kEvents; ++i) s.event();

  ASSERT_TRUE(eventually(
      [&] {
        return daemon.on_loop([&] {
          return daemon.store().queued_writes() == kBound && daemon.deliver().in_flight() == 0;
        });
      },
      10s))
      << "queued writes " << daemon.on_loop([&] { return daemon.store().queued_writes(); })
      << ", in flight " << daemon.on_loop([&] { return daemon.deliver().in_flight(); }) << ", sent "
      << s.hooks.count();
  EXPECT_EQ(s.hooks.count(), kBound);
  // Time passes (the writer fails twice more) and still nothing more is sent.
  const auto writes_failed = [&] {
    return daemon.on_loop([&] { return daemon.store().writes_failed(); });
  };
  const auto failures = writes_failed();
  ASSERT_TRUE(eventually([&] { return writes_failed() >= failures + 2; }, 10s));
  EXPECT_EQ(s.hooks.count(), kBound);
  EXPECT_EQ(daemon.on_loop([&] { return daemon.store().queued_writes(); }), kBound);

  // Writes work again: the backlog drains and delivery resumes to the end, one attempt each.
  s.db.sql().script("DROP TRIGGER refuse ON outboxd.attempts");
  ASSERT_TRUE(s.eventually_count(
      "SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'", kEvents, 20s));
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts"), kEvents);
  EXPECT_EQ(s.hooks.count(), static_cast<std::size_t>(kEvents));
}

TEST(delivery, an_outcome_that_cannot_be_stored_is_dropped_and_does_not_block_the_others) {
  scene s;
  s.webhook(1, "/teapot");
  s.webhook(2, "/hook");
  s.hooks.react("/teapot", {}, reaction::with_status(418));
  // The database refuses the teapot's attempt row (bad data, SQLSTATE 23514) and nothing else.
  s.db.sql().script(
      "ALTER TABLE outboxd.attempts ADD CONSTRAINT no_teapots "
      "CHECK (status_code IS DISTINCT FROM 418)");
  running_daemon daemon(test_config(s.db.url()));
  for (int i = 0; i < 3; ++i) s.event();
  ASSERT_TRUE(
      s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'", 3));
  ASSERT_TRUE(eventually(
      [&] { return daemon.on_loop([&] { return daemon.store().writes_dropped(); }) == 3; }, 10s));
  EXPECT_EQ(daemon.on_loop([&] { return daemon.store().queued_writes(); }), 0u);
  // The teapot's deliveries wait for their lease to end, to be tried again: nothing is lost.
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'delivering'"), 3);
}

TEST(delivery, failures_an_operator_must_fix_are_warned_once_per_webhook_with_their_error_code) {
  scene s;
  // Two broken webhooks and a working one; each broken one fails every attempt, quickly retried.
  const auto bad_url = s.webhook_at(1, "not a url");
  const auto bad_header = s.webhook(2, "/hook2", kFerrisKeySecret, R"({"X-Bad": "a\nb"})");
  s.webhook(3, "/hook3");
  std::ostringstream lines;
  const auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(lines);
  sink->set_pattern("%l %v");
  spdlog::default_logger()->sinks().push_back(sink);
  {
    running_daemon daemon(quick_retries(s.db.url(), 4));
    for (int i = 0; i < 5; ++i) s.event();
    // 5 events x 4 attempts each for both broken webhooks: 40 failures, all of them dead.
    ASSERT_TRUE(s.eventually_count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'dead'",
                                   10, 20s));
    ASSERT_TRUE(s.eventually_count(
        "SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'", 5));
  }
  auto& sinks = spdlog::default_logger()->sinks();
  sinks.erase(std::find(sinks.begin(), sinks.end(), sink));

  const auto warnings_about = [&](const std::string& webhook) {
    std::istringstream in(lines.str());
    std::vector<std::string> found;
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("warning ") && line.find(webhook) != std::string::npos) {
        found.push_back(line);
      }
    }
    return found;
  };
  // Within the minute, one line per webhook: its id and its error code; never its header value.
  const auto url_lines = warnings_about(bad_url);
  ASSERT_EQ(url_lines.size(), 1u) << lines.str();
  EXPECT_NE(url_lines[0].find("invalid_url"), std::string::npos) << url_lines[0];
  const auto header_lines = warnings_about(bad_header);
  ASSERT_EQ(header_lines.size(), 1u) << lines.str();
  EXPECT_NE(header_lines[0].find("invalid_header"), std::string::npos) << header_lines[0];
  EXPECT_EQ(lines.str().find("a\\nb"), std::string::npos);
}

}  // namespace
}  // namespace outboxd::test
