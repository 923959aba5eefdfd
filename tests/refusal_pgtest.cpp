// What the daemon refuses to send, end to end on the real database: every kind of broken webhook
// row or event fails only its own delivery, with its own error code and a detail that says why;
// and the destination rules (--https-only, --allow-ports, the address policy) on the real binary,
// reloaded with SIGHUP. Each refusal is an attempt in outboxd.attempts while the other deliveries
// go on.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

struct bad_row {
  const char* what;
  std::string url;  // empty: the receiver's /bad<n>
  std::string secret = kFerrisKeySecret;
  std::string headers = "{}";
  const char* code;
  const char* detail;  // part of the attempt's error_detail
};

std::uint16_t closed_port() {
  // Bind one, note it, close it: nothing listens there.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();
}

TEST(refusal, every_kind_of_bad_row_fails_its_own_delivery_with_its_code_and_the_next_proceeds) {
  test_database db;
  receiver hooks;
  auto& sql = db.sql();
  const auto realm = uuid(1);
  add_realm(sql, realm, "acme");
  const std::string port = std::to_string(hooks.port());
  const std::vector<bad_row> rows = {
      {"empty URL", "", kFerrisKeySecret, "{}", "invalid_url", "empty"},
      {"relative URL", "/hook", kFerrisKeySecret, "{}", "invalid_url", "relative"},
      {"no scheme", "127.0.0.1:" + port + "/hook", kFerrisKeySecret, "{}", "invalid_url", "URI"},
      {"host:port without scheme", "localhost:" + port + "/hook", kFerrisKeySecret, "{}",
       "invalid_url", "scheme"},
      {"port 0", "http://127.0.0.1:0/hook", kFerrisKeySecret, "{}", "invalid_url", "port"},
      {"port above 65535", "http://127.0.0.1:70000/hook", kFerrisKeySecret, "{}", "invalid_url",
       "port"},
      {"port not a number", "http://127.0.0.1:http/hook", kFerrisKeySecret, "{}", "invalid_url",
       "port"},
      {"unsupported scheme", "ftp://127.0.0.1:" + port + "/hook", kFerrisKeySecret, "{}",
       "invalid_url", "scheme"},
      {"credentials in the URL", "http://admin:pw-in-url@127.0.0.1:" + port + "/hook",
       kFerrisKeySecret, "{}", "invalid_url", "user-info"},
      {"space in the URL", "http://127.0.0.1:" + port + "/a b", kFerrisKeySecret, "{}",
       "invalid_url", "space"},
      {"headers a JSON array", "", kFerrisKeySecret, R"(["X-A", "b"])", "invalid_header",
       "not a JSON object"},
      {"headers a JSON string", "", kFerrisKeySecret, R"("X-A: b")", "invalid_header",
       "not a JSON object"},
      {"headers a JSON number", "", kFerrisKeySecret, "42", "invalid_header", "not a JSON object"},
      {"header name with a space", "", kFerrisKeySecret, R"({"X Bad": "v"})", "invalid_header",
       "not an HTTP token"},
      {"header name with a colon", "", kFerrisKeySecret, R"({"X-A: b": "v"})", "invalid_header",
       "not an HTTP token"},
      {"empty header name", "", kFerrisKeySecret, R"({"": "v"})", "invalid_header", "empty"},
      {"CR LF in a header value", "", kFerrisKeySecret, R"({"X-Bad": "a\r\nInjected: yes"})",
       "invalid_header", "control character"},
      {"BEL in a header value", "", kFerrisKeySecret, R"({"X-Bad": "a\u0007b"})", "invalid_header",
       "control character"},
      {"header value not a string", "", kFerrisKeySecret, R"({"X-Count": 1})", "invalid_header",
       "not a string"},
      {"empty secret", "", "", "{}", "invalid_secret", "empty"},
      {"whsec_ secret with an empty key", "", "whsec_", "{}", "invalid_secret", "empty"},
      {"whsec_ secret not base64", "", "whsec_!!!not-base64!!!", "{}", "invalid_secret", "base64"},
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const auto id = uuid(100 + static_cast<int>(i));
    add_webhook(sql, id, realm,
                row.url.empty() && row.code != std::string("invalid_url")
                    ? hooks.url("/bad" + std::to_string(i))
                    : row.url,
                row.secret, row.headers);
    subscribe(sql, id, "user.created");
  }
  // The good one also takes user.updated, whose first event is too large to send.
  add_webhook(sql, uuid(99), realm, hooks.url("/good"));
  subscribe(sql, uuid(99), "user.created");
  subscribe(sql, uuid(99), "user.updated");

  auto config = test_config(db.url());
  config.delivery.engine.max_payload_bytes = 4096;
  running_daemon daemon(config);
  const auto first = insert_event(sql, realm, "user.created", R"({"username": "alice"})");
  const auto too_large =
      insert_event(sql, realm, "user.updated", R"({"blob": ")" + std::string(5000, 'x') + R"("})");
  ASSERT_TRUE(hooks.wait_for_count(1, 10s, "/good"));
  ASSERT_TRUE(eventually(
      [&] {
        return sql.scalar("SELECT count(*) FROM outboxd.attempts WHERE attempt_number = 1") ==
               static_cast<std::int64_t>(rows.size()) + 2;
      },
      10s, 20ms));

  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    SCOPED_TRACE(row.what);
    const auto attempt = sql.exec(
        "SELECT a.error_code, a.error_detail, coalesce(a.status_code, 0), a.succeeded "
        "FROM outboxd.attempts a JOIN outboxd.deliveries d ON d.id = a.delivery_id "
        "WHERE d.webhook_id = $1 AND d.event_id = $2 AND a.attempt_number = 1",
        {uuid(100 + static_cast<int>(i)), std::to_string(first)});
    ASSERT_EQ(attempt.rows(), 1);
    EXPECT_EQ(attempt.text(0, 0), row.code);
    EXPECT_NE(std::string(attempt.text(0, 1)).find(row.detail), std::string::npos)
        << attempt.text(0, 1);
    EXPECT_EQ(attempt.int64(0, 2), 0);
    EXPECT_FALSE(attempt.boolean(0, 3));
  }
  // The body too large for --max-payload-bytes: dead at once, never sent.
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.deliveries d JOIN outboxd.attempts a ON "
                       "a.delivery_id = d.id WHERE d.event_id = $1 AND d.status = 'dead' AND "
                       "a.error_code = 'payload_too_large'",
                       {std::to_string(too_large)}),
            1);
  // Nothing malformed went out; no detail repeats a credential or an injected header.
  EXPECT_EQ(hooks.count(), 1u);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.attempts WHERE error_detail LIKE "
                       "'%pw-in-url%' OR error_detail LIKE '%Injected%'"),
            0);

  // The next deliveries proceed: to the good webhook, for both event types.
  insert_event(sql, realm, "user.created", R"({"username": "bob"})");
  insert_event(sql, realm, "user.updated", R"({"username": "bob"})");
  EXPECT_TRUE(hooks.wait_for_count(3, 10s, "/good"));
  EXPECT_TRUE(eventually(
      [&] {
        return sql.scalar(
                   "SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = $1 AND "
                   "status = 'succeeded'",
                   {uuid(99)}) == 3;
      },
      10s, 20ms));
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// The error_code of the webhook's latest attempt ("" for none, "ok" for a success).
std::string latest_code(sql_session& sql, const std::string& webhook) {
  const auto rows = sql.exec(
      "SELECT coalesce(a.error_code, 'ok') FROM outboxd.attempts a JOIN outboxd.deliveries d "
      "ON d.id = a.delivery_id WHERE d.webhook_id = $1 ORDER BY a.started_at DESC, "
      "a.attempt_number DESC LIMIT 1",
      {webhook});
  return rows.rows() == 0 ? std::string() : std::string(rows.text(0, 0));
}

TEST(refusal, destination_rules_refuse_each_attempt_with_its_code_and_reload_live) {
  test_database db;
  receiver plain;
  receiver secure({.tls = true});
  auto& sql = db.sql();
  const auto realm = uuid(1);
  add_realm(sql, realm, "acme");
  const auto secure_port = std::to_string(secure.port());
  const auto plain_port = std::to_string(plain.port());
  const auto unused_port = std::to_string(closed_port());
  struct hook {
    std::string id;
    std::string url;
  };
  const hook http_hook{uuid(11), plain.url("/plain")};
  const hook https_hook{uuid(12), secure.url("/secure")};
  const hook other_port{uuid(13), "https://127.0.0.1:" + unused_port + "/other"};
  const hook private_v4{uuid(14), "https://10.255.0.1:" + secure_port + "/private"};
  const hook nat64{uuid(15), "https://[64:ff9b::a00:1]:" + secure_port + "/nat64"};
  const hook six_to_four{uuid(16), "https://[2002:a00:1::1]:" + secure_port + "/6to4"};
  const hook teredo{uuid(17),
                    "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]:" + secure_port + "/teredo"};
  const hook benchmarking{uuid(18), "https://198.18.0.1:" + secure_port + "/bench"};
  for (const auto& h :
       {http_hook, https_hook, other_port, private_v4, nat64, six_to_four, teredo, benchmarking}) {
    add_webhook(sql, h.id, realm, h.url);
    subscribe(sql, h.id, "user.created");
  }

  const std::string config = ::testing::TempDir() + "outboxd_refusal_" + std::to_string(::getpid());
  const std::string common =
      "allow-cidr = 127.0.0.0/8\nretry-schedule = 200ms\n"
      "max-attempts = 100\nca-file = " +
      secure.ca_file() + "\n";
  write_file(config,
             common + "https-only = true\nallow-ports = " + plain_port + "," + secure_port + "\n");
  // clang-format off
  daemon_process daemon({"run",
                         "--database-url", db.url(),
                         "--config", config,
                         "--admin-address", "127.0.0.1:0",
                         "--poll-interval", "100ms",
                         "--reconnect-min", "50ms",
                         "--shutdown-timeout", "5s"});
  // clang-format on
  insert_event(sql, realm, "user.created");

  // The https endpoint is served while every other one is refused, each with its own code.
  ASSERT_TRUE(secure.wait_for_count(1, 30s, "/secure")) << daemon.log();
  const auto settles_at = [&](const hook& h, const std::string& code) {
    return eventually([&] { return latest_code(sql, h.id) == code; }, 10s, 20ms);
  };
  EXPECT_TRUE(settles_at(https_hook, "ok")) << daemon.log();
  EXPECT_TRUE(settles_at(http_hook, "https_required")) << daemon.log();
  EXPECT_TRUE(settles_at(other_port, "port_not_allowed")) << daemon.log();
  for (const auto& h : {private_v4, nat64, six_to_four, teredo, benchmarking}) {
    EXPECT_TRUE(settles_at(h, "blocked_address")) << h.url << "\n" << daemon.log();
  }
  EXPECT_EQ(plain.count(), 0u);
  // The detail names the range and, for an IPv6 form, the IPv4 address it carries.
  const auto detail_of = [&](const hook& h) {
    return std::string(
        sql.exec("SELECT a.error_detail FROM outboxd.attempts a JOIN "
                 "outboxd.deliveries d ON d.id = a.delivery_id WHERE "
                 "d.webhook_id = $1 ORDER BY a.started_at DESC, a.attempt_number DESC LIMIT 1",
                 {h.id})
            .text(0, 0));
  };
  EXPECT_NE(detail_of(private_v4).find("private-use 10.0.0.0/8"), std::string::npos);
  EXPECT_NE(detail_of(nat64).find("NAT64 64:ff9b::/96 carrying 10.0.0.1"), std::string::npos);
  EXPECT_NE(detail_of(six_to_four).find("6to4 2002::/16 carrying 10.0.0.1"), std::string::npos);
  EXPECT_NE(detail_of(teredo).find("Teredo 2001::/32 carrying 192.0.2.45"), std::string::npos);
  EXPECT_NE(detail_of(benchmarking).find("benchmarking 198.18.0.0/15"), std::string::npos);
  EXPECT_NE(detail_of(other_port).find("port " + unused_port + " is not in --allow-ports"),
            std::string::npos);

  // Refusals are counted as such.
  const auto admin = daemon.admin_port(10s);
  ASSERT_TRUE(admin) << daemon.log();
  const auto metrics = http_get(*admin, "/metrics");
  EXPECT_NE(metrics.body.find("outboxd_attempts_total{class=\"refused\"}"), std::string::npos);
  EXPECT_EQ(metrics.body.find("outboxd_attempts_total{class=\"refused\"} 0\n"), std::string::npos);

  // Reloaded: http is allowed again, so the refused delivery's next retry reaches the receiver;
  // the other port is still refused.
  write_file(config,
             common + "https-only = false\nallow-ports = " + plain_port + "," + secure_port + "\n");
  daemon.send(SIGHUP);
  ASSERT_TRUE(plain.wait_for_count(1, 30s, "/plain")) << daemon.log();
  EXPECT_NE(daemon.log().find("SIGHUP: applied https-only"), std::string::npos) << daemon.log();
  EXPECT_TRUE(settles_at(http_hook, "ok")) << daemon.log();
  EXPECT_EQ(latest_code(sql, other_port.id), "port_not_allowed");

  // Any port: the other port is tried now, and nothing listens there.
  write_file(config, common + "https-only = false\nallow-ports = any\n");
  daemon.send(SIGHUP);
  EXPECT_TRUE(settles_at(other_port, "connect_refused")) << daemon.log();
  // The address refusals do not depend on either setting.
  EXPECT_EQ(latest_code(sql, nat64.id), "blocked_address");

  daemon.send(SIGTERM);
  EXPECT_EQ(daemon.wait_for_exit(10s), 0) << daemon.log();
  std::remove(config.c_str());
}

}  // namespace
}  // namespace outboxd::test
