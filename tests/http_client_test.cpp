#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "outboxd/http/client.hpp"
#include "support/post_harness.hpp"
#include "support/receiver.hpp"
#include "support/scripted_lookup.hpp"

namespace outboxd::http {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using test::reaction;
using test::receiver;
using tcp = asio::ip::tcp;

using harness = test::post_harness;
using test::make_request;

client_options local_options() { return test::local_client_options(); }

// A port nothing listens on: bound by us, then released.
std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

TEST(http_client, posts_and_reuses_one_keep_alive_connection) {
  receiver server;
  harness h;
  const auto req = make_request(server.url("/hook?attempt=1"), R"({"a":1})",
                                {{"X-Custom", "yes"}, {"Content-Type", "application/json"}});
  for (int i = 0; i < 3; ++i) {
    const auto res = h.post(req);
    EXPECT_EQ(res.error_code, "") << res.error_detail;
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body_prefix, "ok");
    EXPECT_FALSE(res.retry_after);
  }
  EXPECT_EQ(server.connections_accepted(), 1u);
  EXPECT_EQ(h.client().idle_connections(), 1u);

  const auto seen = server.requests("/hook");
  ASSERT_EQ(seen.size(), 3u);
  const auto& first = seen.front();
  EXPECT_EQ(first.method, "POST");
  EXPECT_EQ(first.target, "/hook?attempt=1");
  EXPECT_EQ(first.body, R"({"a":1})");
  EXPECT_EQ(first.headers.at("x-custom"), "yes");
  EXPECT_EQ(first.headers.at("content-type"), "application/json");
  EXPECT_EQ(first.headers.at("content-length"), "7");
  EXPECT_EQ(first.headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(first.headers.count("transfer-encoding"), 0u);
}

TEST(http_client, error_statuses_are_statuses_and_redirects_are_not_followed) {
  receiver server;
  server.react("/500", {}, reaction::with_status(500));
  server.react("/410", {}, reaction::with_status(410));
  auto moved = reaction::with_status(301);
  moved.location = server.url("/elsewhere");
  server.react("/301", {}, moved);
  harness h;

  const auto req500 = make_request(server.url("/500"));
  const auto res500 = h.post(req500);
  EXPECT_EQ(res500.status, 500);
  EXPECT_EQ(res500.error_code, "");
  EXPECT_EQ(res500.body_prefix, "status");

  const auto req410 = make_request(server.url("/410"));
  const auto res410 = h.post(req410);
  EXPECT_EQ(res410.status, 410);
  EXPECT_EQ(res410.error_code, "");

  const auto req301 = make_request(server.url("/301"));
  const auto res301 = h.post(req301);
  EXPECT_EQ(res301.status, 301);
  EXPECT_EQ(res301.error_code, "");
  EXPECT_EQ(server.count("/301"), 1u);
  EXPECT_EQ(server.count("/elsewhere"), 0u);
  EXPECT_EQ(server.count(), 3u);
}

TEST(http_client, passes_retry_after_verbatim) {
  receiver server;
  auto throttled = reaction::with_status(429);
  throttled.retry_after = "7";
  server.react("/hook", {throttled});
  harness h;
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.status, 429);
  EXPECT_EQ(res.error_code, "");
  ASSERT_TRUE(res.retry_after);
  EXPECT_EQ(*res.retry_after, "7");
}

TEST(http_client, times_out_on_a_server_that_never_answers) {
  receiver server;
  server.react("/hook", {reaction{.what = reaction::kind::hang}});
  auto options = local_options();
  options.request_timeout = 300ms;
  harness h(options);
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "timeout") << res.error_detail;
  EXPECT_EQ(res.status, 0);
  EXPECT_GE(res.duration, 300ms);
  EXPECT_LT(res.duration, 2s);
  EXPECT_EQ(h.client().idle_connections(), 0u);
}

TEST(http_client, times_out_on_a_dribbling_server) {
  receiver server;
  server.react("/hook", {reaction{.what = reaction::kind::dribble,
                                  .body = std::string(100, 'x'),
                                  .dribble_interval = 100ms}});
  auto options = local_options();
  options.request_timeout = 500ms;
  harness h(options);
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "timeout") << res.error_detail;
  EXPECT_GE(res.duration, 500ms);
  EXPECT_LT(res.duration, 2s);
}

TEST(http_client, cuts_an_endless_body_and_drops_the_connection) {
  receiver server;
  server.react("/hook", {reaction{.what = reaction::kind::endless}});
  auto options = local_options();
  options.max_response_bytes = 1000;
  options.request_timeout = 5000ms;
  harness h(options);
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "") << res.error_detail;
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body_prefix.size(), 1000u);
  EXPECT_LT(res.duration, 1s);
  EXPECT_EQ(h.client().idle_connections(), 0u);
}

TEST(http_client, keeps_a_body_of_exactly_the_limit_and_the_connection) {
  receiver server;
  auto options = local_options();
  options.max_response_bytes = 2;  // "ok"
  harness h(options);
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body_prefix, "ok");
  EXPECT_EQ(h.client().idle_connections(), 1u);

  // One byte over: cut, and the connection is not kept.
  server.react("/long", {}, reaction{.body = "abc"});
  const auto long_req = make_request(server.url("/long"));
  const auto cut = h.post(long_req);
  EXPECT_EQ(cut.status, 200);
  EXPECT_EQ(cut.body_prefix, "ab");
  EXPECT_EQ(h.client().idle_connections(), 0u);
}

TEST(http_client, reports_a_reset) {
  receiver server;
  server.react("/hook", {reaction{.what = reaction::kind::reset}});
  harness h;
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "reset") << res.error_detail;
  EXPECT_EQ(res.status, 0);
  // A fresh connection failing is not retried.
  EXPECT_EQ(server.count(), 1u);
}

TEST(http_client, reports_a_refused_connection) {
  const auto port = free_port();
  harness h;
  const auto req = make_request("http://127.0.0.1:" + std::to_string(port) + "/hook");
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "connect_refused") << res.error_detail;
  EXPECT_NE(res.error_detail.find(std::to_string(port)), std::string::npos) << res.error_detail;
}

TEST(http_client, blocks_loopback_unless_allowed) {
  receiver server;
  harness h(client_options{});  // default policy: public addresses only
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "blocked_address");
  // The detail names the address and the range that refused it.
  EXPECT_NE(res.error_detail.find("127.0.0.1 (loopback 127.0.0.0/8) is not allowed"),
            std::string::npos)
      << res.error_detail;
  EXPECT_EQ(server.connections_accepted(), 0u);
  EXPECT_EQ(server.count(), 0u);

  // "localhost" goes through the resolver (/etc/hosts) and is judged by what it resolves to.
  const auto by_name = make_request("http://localhost:" + std::to_string(server.port()) + "/hook");
  const auto named = h.post(by_name);
  EXPECT_EQ(named.error_code, "blocked_address");
  EXPECT_NE(named.error_detail.find("localhost"), std::string::npos) << named.error_detail;
  EXPECT_EQ(server.connections_accepted(), 0u);
}

TEST(http_client, refuses_plain_http_and_unlisted_ports_before_connecting) {
  receiver server;
  auto options = local_options();
  options.endpoints = endpoint_policy(true, {});
  harness h(options);
  const auto req = make_request(server.url("/hook"));
  const auto plain = h.post(req);
  EXPECT_EQ(plain.error_code, "https_required") << plain.error_detail;
  EXPECT_EQ(plain.status, 0);

  // Another port list, set the way a reload sets it: the receiver's port is not on it.
  const auto port = server.port();
  const std::uint16_t other = port == 65535 ? 1 : static_cast<std::uint16_t>(port + 1);
  h.client().set_endpoint_policy(endpoint_policy(false, {{other, other}, {1, 1}}));
  const auto unlisted = h.post(req);
  EXPECT_EQ(unlisted.error_code, "port_not_allowed") << unlisted.error_detail;
  EXPECT_NE(unlisted.error_detail.find("port " + std::to_string(port) + " is not in"),
            std::string::npos)
      << unlisted.error_detail;
  EXPECT_EQ(server.connections_accepted(), 0u);

  // Listed (in a range): sent.
  h.client().set_endpoint_policy(endpoint_policy(false, {{1, 1}, {port, port}}));
  const auto listed = h.post(req);
  EXPECT_EQ(listed.status, 200) << listed.error_detail;
  EXPECT_EQ(server.count(), 1u);

  // A pooled connection to the port does not get around a policy set afterwards.
  h.client().set_endpoint_policy(endpoint_policy(true, {}));
  EXPECT_EQ(h.post(req).error_code, "https_required");
  EXPECT_EQ(server.count(), 1u);
}

TEST(http_client, resolves_localhost_when_allowed) {
  receiver server;
  harness h;
  const auto req = make_request("http://localhost:" + std::to_string(server.port()) + "/hook");
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "") << res.error_detail;
  EXPECT_EQ(res.status, 200);
  ASSERT_EQ(server.count(), 1u);
  EXPECT_EQ(server.requests().front().headers.at("host"),
            "localhost:" + std::to_string(server.port()));
}

TEST(http_client, retries_once_when_a_reused_connection_turns_out_dead) {
  receiver server;
  // Second request: the server takes it and drops the connection without a byte of response,
  // as a server closing an idle keep-alive connection at the wrong moment does.
  server.react("/hook", {reaction::ok(), reaction{.what = reaction::kind::reset}});
  harness h;
  const auto req = make_request(server.url());
  const auto first = h.post(req);
  ASSERT_EQ(first.status, 200) << first.error_detail;
  ASSERT_EQ(h.client().idle_connections(), 1u);

  const auto second = h.post(req);
  EXPECT_EQ(second.error_code, "") << second.error_detail;
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(server.count(), 3u);                 // ok, reset (stale), ok on the retry
  EXPECT_EQ(server.connections_accepted(), 2u);  // the retry used a new connection
  EXPECT_EQ(h.client().idle_connections(), 1u);
}

TEST(http_client, retries_a_dead_reused_connection_only_once) {
  receiver server;
  server.react("/hook", {reaction::ok(), reaction{.what = reaction::kind::reset},
                         reaction{.what = reaction::kind::reset}});
  harness h;
  const auto req = make_request(server.url());
  ASSERT_EQ(h.post(req).status, 200);
  const auto second = h.post(req);
  EXPECT_EQ(second.error_code, "reset") << second.error_detail;
  EXPECT_EQ(server.count(), 3u);
  EXPECT_EQ(server.connections_accepted(), 2u);
  EXPECT_EQ(h.client().idle_connections(), 0u);
}

TEST(http_client, close_idle_and_idle_timeout_force_new_connections) {
  receiver server;
  auto options = local_options();
  options.idle_timeout = 100ms;
  harness h(options);
  const auto req = make_request(server.url());
  ASSERT_EQ(h.post(req).status, 200);
  EXPECT_EQ(h.client().idle_connections(), 1u);
  h.client().close_idle();
  EXPECT_EQ(h.client().idle_connections(), 0u);

  ASSERT_EQ(h.post(req).status, 200);
  EXPECT_EQ(server.connections_accepted(), 2u);

  std::this_thread::sleep_for(150ms);  // longer than idle_timeout: the pooled one is discarded
  ASSERT_EQ(h.post(req).status, 200);
  EXPECT_EQ(server.connections_accepted(), 3u);
  EXPECT_EQ(h.client().idle_connections(), 1u);
}

TEST(http_client, bounds_the_idle_pool_per_endpoint) {
  receiver server;
  auto options = local_options();
  options.max_idle_per_endpoint = 2;
  harness h(options);
  const auto req = make_request(server.url());
  const std::vector<request> batch(4, req);
  const auto results = h.post_concurrently(batch);
  for (const auto& res : results) EXPECT_EQ(res.status, 200) << res.error_detail;
  EXPECT_EQ(server.connections_accepted(), 4u);
  EXPECT_EQ(h.client().idle_connections(), 2u);
}

TEST(http_client, refuses_to_send_a_header_with_a_line_break) {
  receiver server;
  harness h;
  const auto req = make_request(server.url(), "{}", {{"X-Evil", "a\r\nX-Injected: 1"}});
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "io");
  EXPECT_EQ(server.connections_accepted(), 0u);
}

TEST(http_client, posts_over_tls_with_the_given_ca) {
  receiver server({.tls = true});
  auto options = local_options();
  options.ca_file = server.ca_file();
  harness h(options);
  const auto req = make_request(server.url());
  ASSERT_EQ(req.url.key(), "https://127.0.0.1:" + std::to_string(server.port()));
  for (int i = 0; i < 2; ++i) {
    const auto res = h.post(req);
    EXPECT_EQ(res.error_code, "") << res.error_detail;
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body_prefix, "ok");
  }
  EXPECT_EQ(server.connections_accepted(), 1u);

  // By name: SNI and DNS-name verification against the certificate's "localhost".
  const auto by_name = make_request("https://localhost:" + std::to_string(server.port()) + "/hook");
  const auto named = h.post(by_name);
  EXPECT_EQ(named.error_code, "") << named.error_detail;
  EXPECT_EQ(named.status, 200);
}

TEST(http_client, refuses_a_certificate_it_cannot_verify) {
  receiver server({.tls = true});
  harness h;  // system CAs only
  const auto req = make_request(server.url());
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "tls_untrusted");
  EXPECT_NE(res.error_detail.find("certificate verify failed"), std::string::npos)
      << res.error_detail;
  EXPECT_EQ(server.count(), 0u);
}

TEST(http_client, reports_an_unreadable_ca_file_as_tls) {
  auto options = local_options();
  options.ca_file = "/nonexistent/ca.pem";
  harness h(options);
  const auto req = make_request("https://127.0.0.1:1/hook");
  const auto res = h.post(req);
  EXPECT_EQ(res.error_code, "tls");
  EXPECT_NE(res.error_detail.find("/nonexistent/ca.pem"), std::string::npos) << res.error_detail;
  EXPECT_EQ(h.client().tls_setup_error(), res.error_detail);
}

TEST(http_client, connect_timeout_bounds_the_tls_handshake) {
  // A listening socket nobody accepts from: the kernel completes the TCP handshake, then
  // nothing ever answers the ClientHello (or the request).
  asio::io_context io;
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
  const auto port = std::to_string(silent.local_endpoint().port());
  auto options = local_options();
  options.connect_timeout = 200ms;
  options.request_timeout = 1500ms;
  harness h(options);

  const auto tls_req = make_request("https://127.0.0.1:" + port + "/hook");
  const auto tls_res = h.post(tls_req);
  EXPECT_EQ(tls_res.error_code, "timeout") << tls_res.error_detail;
  EXPECT_GE(tls_res.duration, 200ms);
  EXPECT_LT(tls_res.duration, 1000ms);

  const auto plain_req = make_request("http://127.0.0.1:" + port + "/hook");
  const auto plain_res = h.post(plain_req);
  EXPECT_EQ(plain_res.error_code, "timeout") << plain_res.error_detail;
  EXPECT_GE(plain_res.duration, 1500ms);
  EXPECT_LT(plain_res.duration, 2500ms);
}

TEST(http_client, caps_idle_connections_across_endpoints_closing_the_longest_idle) {
  std::vector<std::unique_ptr<receiver>> servers;
  for (int i = 0; i < 12; ++i) servers.push_back(std::make_unique<receiver>());
  auto options = local_options();
  options.max_idle_connections = 4;
  harness h(options);
  for (const auto& server : servers) {
    const auto req = make_request(server->url());
    ASSERT_EQ(h.post(req).status, 200);
    EXPECT_LE(h.client().idle_connections(), 4u);
  }
  EXPECT_EQ(h.client().idle_connections(), 4u);
  EXPECT_EQ(h.client().stats().idle_closed_total_cap, 8u);

  // The four used last are kept; the first one's connection was closed.
  for (std::size_t i = 8; i < servers.size(); ++i) {
    const auto req = make_request(servers[i]->url());
    ASSERT_EQ(h.post(req).status, 200);
    EXPECT_EQ(servers[i]->connections_accepted(), 1u) << i;
  }
  const auto first = make_request(servers[0]->url());
  ASSERT_EQ(h.post(first).status, 200);
  EXPECT_EQ(servers[0]->connections_accepted(), 2u);
  EXPECT_EQ(h.client().idle_connections(), 4u);
}

TEST(http_client, a_periodic_sweep_closes_idle_connections_without_any_traffic) {
  receiver one;
  receiver two;
  auto options = local_options();
  options.idle_timeout = 100ms;
  harness h(options);
  const auto first = make_request(one.url());
  const auto second = make_request(two.url());
  ASSERT_EQ(h.post(first).status, 200);
  ASSERT_EQ(h.post(second).status, 200);
  EXPECT_EQ(h.client().idle_connections(), 2u);
  h.run_for(400ms);  // no post: only the sweep can close them
  EXPECT_EQ(h.client().idle_connections(), 0u);
  EXPECT_EQ(h.client().stats().idle_closed_timeout, 2u);
}

TEST(http_client, a_name_whose_dns_never_answers_fails_alone_with_dns_timeout) {
  test::scripted_lookup dns;  // outlives the client, whose destructor joins the lookup threads
  receiver server;
  auto options = local_options();
  options.dns = {.threads = 2, .timeout = 300ms, .lookup = dns.function()};
  harness h(options);
  const auto port = std::to_string(server.port());
  std::vector<request> batch;
  for (int i = 0; i < 5; ++i) batch.push_back(make_request("http://stuck.test:" + port + "/hook"));
  for (int i = 0; i < 20; ++i) {
    batch.push_back(make_request("http://good-" + std::to_string(i) + ".test:" + port + "/hook"));
  }
  const auto results = h.post_concurrently(batch);
  auto slowest_good = std::chrono::milliseconds(0);
  auto fastest_stuck = std::chrono::milliseconds::max();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& res = results[i];
    if (i < 5) {
      EXPECT_EQ(res.error_code, "dns_timeout") << res.error_detail;
      EXPECT_GE(res.duration, 300ms);
      EXPECT_LT(res.duration, 1000ms);
      fastest_stuck = std::min(fastest_stuck, res.duration);
    } else {
      EXPECT_EQ(res.status, 200) << res.error_code << " " << res.error_detail;
      slowest_good = std::max(slowest_good, res.duration);
    }
  }
  EXPECT_LT(slowest_good, fastest_stuck) << "the other names were served while it was stuck";
  EXPECT_EQ(server.count(), 20u);
  EXPECT_EQ(h.client().stats().dns.lookups, 21u) << "one lookup for the five stuck requests";

  const auto missing = make_request("http://missing.test:" + port + "/hook");
  const auto res = h.post(missing);
  EXPECT_EQ(res.error_code, "dns");
  EXPECT_NE(res.error_detail.find("cannot resolve missing.test"), std::string::npos)
      << res.error_detail;
  dns.unstick();  // before the client goes: its destructor waits for the stuck lookup's thread
}

}  // namespace
}  // namespace outboxd::http
