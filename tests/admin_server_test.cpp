// The admin HTTP server on its own, no database: routes, methods, deadlines and size bounds, the
// --admin-address syntax, and the binary's start-up (bind failure, health while PostgreSQL is
// away).
#include "outboxd/http/admin_server.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <stdexcept>
#include <thread>

#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using http::admin_reply;

// The server on its own event-loop thread, as the daemon runs it, with routes a test can steer.
struct admin_fixture {
  explicit admin_fixture(http::admin_server_options options = {.io_timeout = 300ms})
      : server(io.get_executor(), options,
               {.metrics =
                    [this] {
                      return admin_reply{.content_type = "text/x-test", .body = metrics_body};
                    },
                .ready =
                    [this] {
                      if (ready_throws) throw std::runtime_error("boom");
                      return admin_reply{.status = static_cast<unsigned>(ready_status.load()),
                                         .body = "reason\n"};
                    }}) {
    const auto ec = server.listen(tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    if (ec) throw std::runtime_error("listen: " + ec.message());
    port = server.local_endpoint().port();
    server.start();
    thread = std::thread([this] { io.run(); });
  }
  ~admin_fixture() { stop(); }

  void stop() {
    if (!thread.joinable()) return;
    asio::post(io, [this] { server.stop(); });
    thread.join();
  }

  asio::io_context io;
  std::string metrics_body = "outboxd_test_total 1\n";
  std::atomic<int> ready_status{503};
  std::atomic<bool> ready_throws{false};
  http::admin_server server;
  std::uint16_t port = 0;
  std::thread thread;
};

// A client that speaks raw bytes, for what a well-behaved HTTP client never sends.
struct raw_client {
  explicit raw_client(std::uint16_t port) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    bound_socket_io(socket.native_handle(), 5s);
  }
  void send(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }
  // Everything until the server closes (or the 5 s receive bound passes: would_block).
  std::string read_until_closed(boost::system::error_code& ec) {
    std::string data;
    std::array<char, 4096> chunk{};
    for (;;) {
      const auto n = socket.read_some(asio::buffer(chunk), ec);
      data.append(chunk.data(), n);
      if (ec) return data;
    }
  }
  // One response: reads until the end of its body (Content-Length), leaving the connection open.
  std::string read_response() {
    std::string data;
    std::array<char, 4096> chunk{};
    for (int i = 0; i < 100; ++i) {
      const auto header_end = data.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        const auto at = data.find("Content-Length: ");
        const auto length = std::stoul(data.substr(at + 16));
        if (data.size() >= header_end + 4 + length) return data;
      }
      boost::system::error_code ec;
      const auto n = socket.read_some(asio::buffer(chunk), ec);
      data.append(chunk.data(), n);
      if (ec) return data;
    }
    return data;
  }

  asio::io_context io;
  tcp::socket socket{io};
};

bool closed_by_peer(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

TEST(admin_server, serves_health_metrics_and_readiness) {
  admin_fixture f;
  const auto health = http_get(f.port, "/healthz");
  EXPECT_EQ(health.status, 200) << health.error;
  EXPECT_EQ(health.body, "ok\n");

  const auto metrics = http_get(f.port, "/metrics");
  EXPECT_EQ(metrics.status, 200) << metrics.error;
  EXPECT_EQ(metrics.header("content-type"), "text/x-test");
  EXPECT_EQ(metrics.body, f.metrics_body);
  EXPECT_EQ(http_get(f.port, "/metrics?name=x").body, f.metrics_body) << "the query is ignored";

  const auto not_ready = http_get(f.port, "/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(not_ready.body, "reason\n");
  f.ready_status = 200;
  EXPECT_EQ(http_get(f.port, "/readyz").status, 200);
}

TEST(admin_server, answers_404_for_unknown_paths_and_405_for_other_methods) {
  admin_fixture f;
  EXPECT_EQ(http_get(f.port, "/").status, 404);
  EXPECT_EQ(http_get(f.port, "/metrics/more").status, 404);
  for (const auto* method : {"POST", "PUT", "DELETE", "OPTIONS"}) {
    const auto reply = http_request(f.port, method, "/metrics");
    EXPECT_EQ(reply.status, 405) << method << ": " << reply.error;
    EXPECT_EQ(reply.header("allow"), "GET, HEAD") << method;
  }
}

TEST(admin_server, head_has_the_length_of_get_without_the_body) {
  admin_fixture f;
  const auto head = http_request(f.port, "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200) << head.error;
  EXPECT_EQ(head.header("content-length"), std::to_string(f.metrics_body.size()));
  EXPECT_TRUE(head.body.empty());
}

TEST(admin_server, a_route_that_throws_answers_500_and_the_server_goes_on) {
  admin_fixture f;
  f.ready_throws = true;
  EXPECT_EQ(http_get(f.port, "/readyz").status, 500);
  EXPECT_EQ(http_get(f.port, "/healthz").status, 200);
}

TEST(admin_server, keeps_the_connection_alive_between_requests) {
  admin_fixture f;
  raw_client client(f.port);
  for (int i = 0; i < 3; ++i) {
    client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto response = client.read_response();
    EXPECT_TRUE(response.starts_with("HTTP/1.1 200 OK\r\n")) << i << ": " << response;
    EXPECT_TRUE(response.ends_with("\r\n\r\nok\n")) << i << ": " << response;
  }
}

TEST(admin_server, a_request_that_never_completes_is_cut_off_by_the_deadline) {
  admin_fixture f({.io_timeout = 300ms});
  raw_client client(f.port);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");  // the blank line never comes
  const auto sent = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  const auto data = client.read_until_closed(ec);
  const auto waited = std::chrono::steady_clock::now() - sent;
  EXPECT_TRUE(closed_by_peer(ec)) << ec.message() << " (would_block: never closed)";
  EXPECT_TRUE(data.empty()) << data;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(http_get(f.port, "/healthz").status, 200) << "the server goes on";
}

TEST(admin_server, an_idle_keep_alive_connection_is_closed_after_the_deadline) {
  admin_fixture f({.io_timeout = 300ms});
  raw_client client(f.port);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(client.read_response().starts_with("HTTP/1.1 200 OK"));
  boost::system::error_code ec;
  client.read_until_closed(ec);
  EXPECT_TRUE(closed_by_peer(ec)) << ec.message();
}

TEST(admin_server, refuses_an_oversized_header) {
  admin_fixture f({.io_timeout = 2s, .max_header_bytes = 4096});
  raw_client client(f.port);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(16 * 1024, 'a') +
              "\r\n\r\n");
  boost::system::error_code ec;
  const auto data = client.read_until_closed(ec);
  // The server answers 431 and closes; the unread rest of the header may turn that into a reset
  // before the answer is read. Either way nothing is served and the connection ends.
  EXPECT_TRUE(closed_by_peer(ec)) << ec.message();
  EXPECT_TRUE(data.empty() || data.starts_with("HTTP/1.1 431 ")) << data;
  EXPECT_EQ(http_get(f.port, "/healthz").status, 200) << "the server goes on";
}

TEST(admin_server, refuses_an_oversized_body_by_its_declared_length) {
  admin_fixture f({.io_timeout = 2s, .max_body_bytes = 1024});
  raw_client client(f.port);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n");
  boost::system::error_code ec;
  const auto data = client.read_until_closed(ec);
  EXPECT_TRUE(data.starts_with("HTTP/1.1 413 ")) << data;
  EXPECT_TRUE(closed_by_peer(ec)) << ec.message();
}

TEST(admin_server, answers_400_to_a_malformed_request) {
  admin_fixture f;
  raw_client client(f.port);
  client.send("THIS IS NOT HTTP\r\n\r\n");
  boost::system::error_code ec;
  const auto data = client.read_until_closed(ec);
  EXPECT_TRUE(data.starts_with("HTTP/1.1 400 ")) << data;
}

TEST(admin_server, stop_closes_idle_connections_so_the_event_loop_ends) {
  admin_fixture f({.io_timeout = 60s});
  raw_client client(f.port);
  client.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(client.read_response().starts_with("HTTP/1.1 200 OK"));
  const auto asked = std::chrono::steady_clock::now();
  f.stop();  // joins the event loop: it ends only once every connection is gone
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 2s);
  boost::system::error_code ec;
  client.read_until_closed(ec);
  EXPECT_TRUE(closed_by_peer(ec)) << ec.message();
}

TEST(admin_address, accepts_ipv4_ipv6_any_port_and_off) {
  const auto v4 = http::parse_listen_address("127.0.0.1:9187");
  ASSERT_TRUE(v4.endpoint) << v4.problem;
  EXPECT_EQ(http::to_string(*v4.endpoint), "127.0.0.1:9187");
  const auto v6 = http::parse_listen_address("[::1]:9187");
  ASSERT_TRUE(v6.endpoint) << v6.problem;
  EXPECT_TRUE(v6.endpoint->address().is_v6());
  EXPECT_EQ(http::to_string(*v6.endpoint), "[::1]:9187");
  const auto any = http::parse_listen_address("0.0.0.0:0");
  ASSERT_TRUE(any.endpoint) << any.problem;
  EXPECT_EQ(any.endpoint->port(), 0);
  const auto off = http::parse_listen_address("off");
  EXPECT_FALSE(off.endpoint);
  EXPECT_TRUE(off.problem.empty());
}

TEST(admin_address, rejects_what_is_not_ip_and_port) {
  for (const auto* bad : {"", "9187", "localhost:9187", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:http", "::1:9187", "[::1]", "[::1]9187", "127.0.0.1:-1"}) {
    const auto parsed = http::parse_listen_address(bad);
    EXPECT_FALSE(parsed.endpoint) << bad;
    EXPECT_NE(parsed.problem.find("--admin-address"), std::string::npos) << bad;
  }
}

// The real binary, PostgreSQL nowhere (port 1): the admin server is up before the schema check.
const std::string kNoDatabase = "postgresql://outboxd@127.0.0.1:1/none";

TEST(admin_binary, is_healthy_but_not_ready_while_postgresql_is_away_and_stops_on_sigterm) {
  daemon_process daemon({"run", "--database-url", kNoDatabase, "--reconnect-max", "200ms"});
  const auto port = daemon.admin_port(10s);
  ASSERT_TRUE(port) << daemon.log();
  EXPECT_EQ(http_get(*port, "/healthz").status, 200) << daemon.log();
  const auto ready = http_get(*port, "/readyz");
  EXPECT_EQ(ready.status, 503) << daemon.log();
  EXPECT_NE(ready.body.find("PostgreSQL"), std::string::npos) << ready.body;
  const auto metrics = http_get(*port, "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(metrics.body.find("outboxd_build_info{version=\"" OUTBOXD_VERSION "\"} 1"),
            std::string::npos);
  daemon.send(SIGTERM);
  EXPECT_EQ(daemon.wait_for_exit(10s), 0) << daemon.log();
}

TEST(admin_binary, a_taken_admin_port_is_a_start_up_error) {
  asio::io_context io;
  tcp::acceptor taken(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto address = "127.0.0.1:" + std::to_string(taken.local_endpoint().port());
  daemon_process daemon({"run", "--database-url", kNoDatabase, "--admin-address", address});
  EXPECT_EQ(daemon.wait_for_exit(10s), 1) << daemon.log();
  EXPECT_NE(daemon.log().find("cannot start the admin server on " + address), std::string::npos)
      << daemon.log();
}

TEST(admin_binary, off_runs_without_an_admin_server) {
  daemon_process daemon(
      {"run", "--database-url", kNoDatabase, "--admin-address", "off", "--reconnect-max", "200ms"});
  // The admin server would have said so before the schema check's first word.
  ASSERT_TRUE(eventually(
      [&] { return daemon.log().find("retrying until it answers") != std::string::npos; }, 10s))
      << daemon.log();
  EXPECT_EQ(daemon.log().find("admin server listening"), std::string::npos) << daemon.log();
  daemon.send(SIGTERM);
  EXPECT_EQ(daemon.wait_for_exit(10s), 0) << daemon.log();
}

}  // namespace
}  // namespace outboxd::test
