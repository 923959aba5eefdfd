// Keep-alive connections to many distinct receivers cannot use up the daemon's file descriptors:
// the real binary delivers one event to 400 webhooks, each on its own loopback port, and its open
// descriptors (/proc/PID/fd) stay under --max-idle-connections plus the requests in flight plus
// what it holds anyway; the idle sweep then closes the rest.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <filesystem>
#include <list>
#include <sstream>
#include <thread>

#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/iam_rows.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

// One thread answering 200 "ok" with keep-alive on `count` loopback ports: as many receivers as
// ports, without a thread each.
class many_ports {
 public:
  explicit many_ports(std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      auto& acceptor =
          acceptors_.emplace_back(io_, tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), 0));
      ports_.push_back(acceptor.local_endpoint().port());
      asio::co_spawn(io_, accept(acceptor), asio::detached);
    }
    thread_ = std::thread([this] { io_.run(); });
  }
  ~many_ports() {
    io_.stop();
    thread_.join();
  }
  const std::vector<std::uint16_t>& ports() const { return ports_; }
  std::size_t requests() const { return requests_.load(); }

 private:
  asio::awaitable<void> accept(tcp::acceptor& acceptor) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }
  asio::awaitable<void> serve(tcp::socket socket) {
    boost::beast::flat_buffer buffer;
    for (;;) {  // until the client closes the connection
      bhttp::request<bhttp::string_body> request;
      const auto [read_ec, read] =
          co_await bhttp::async_read(socket, buffer, request, asio::as_tuple(asio::use_awaitable));
      (void)read;
      if (read_ec) co_return;
      ++requests_;
      bhttp::response<bhttp::string_body> response{bhttp::status::ok, 11};
      response.body() = "ok";
      response.keep_alive(true);
      response.prepare_payload();
      const auto [write_ec, written] =
          co_await bhttp::async_write(socket, response, asio::as_tuple(asio::use_awaitable));
      (void)written;
      if (write_ec) co_return;
    }
  }

  asio::io_context io_;
  std::list<tcp::acceptor> acceptors_;
  std::vector<std::uint16_t> ports_;
  std::atomic<std::size_t> requests_{0};
  std::thread thread_;
};

std::size_t open_descriptors(int pid) {
  std::error_code ec;
  std::size_t count = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++count;
  }
  return count;
}

// A sample's value from the /metrics text, e.g. `outboxd_idle_connections` or
// `outboxd_idle_connections_closed_total{reason="total_cap"}`; -1 when absent.
double metric(const std::string& text, const std::string& sample) {
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(sample + " ")) return std::stod(line.substr(sample.size() + 1));
  }
  return -1;
}

TEST(idle_connections, many_receivers_cannot_use_up_the_daemons_file_descriptors) {
  constexpr std::size_t kReceivers = 400;
  constexpr std::size_t kMaxIdle = 40;
  constexpr std::size_t kMaxInFlight = 16;
  // Descriptors opened besides the receivers' during the run: a PostgreSQL session opening late
  // (retention, the reporter), an admin connection, a log file being rotated.
  constexpr std::size_t kSlack = 8;

  test_database db;
  // clang-format off
  daemon_process daemon({"run",
                         "--database-url", db.url(),
                         "--allow-cidr", "127.0.0.0/8",
                         "--admin-address", "127.0.0.1:0",
                         "--poll-interval", "200ms",
                         "--max-in-flight", std::to_string(kMaxInFlight),
                         "--max-idle-connections", std::to_string(kMaxIdle),
                         "--idle-connection-timeout", "3s"});
  // clang-format on
  const auto admin = daemon.admin_port(10s);
  ASSERT_TRUE(admin) << daemon.log();

  // The receivers' sockets are opened after the daemon started, so that it inherits none of them.
  many_ports receivers(kReceivers);
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "acme");
  for (std::size_t i = 0; i < kReceivers; ++i) {
    const auto id = uuid(1000 + static_cast<int>(i));
    add_webhook(sql, id, uuid(1),
                "http://127.0.0.1:" + std::to_string(receivers.ports()[i]) + "/hook");
    subscribe(sql, id, "user.created");
  }
  ASSERT_TRUE(eventually([&] { return http_get(*admin, "/readyz").status == 200; }, 20s))
      << daemon.log();
  const auto baseline = open_descriptors(daemon.pid());
  ASSERT_GT(baseline, 0u);

  insert_event(sql, uuid(1), "user.created");
  std::size_t most = 0;
  const auto delivered = eventually(
      [&] {
        most = std::max(most, open_descriptors(daemon.pid()));
        return receivers.requests() >= kReceivers;
      },
      60s, 2ms);
  ASSERT_TRUE(delivered) << receivers.requests() << " of " << kReceivers << "\n" << daemon.log();
  most = std::max(most, open_descriptors(daemon.pid()));
  std::printf(
      "open descriptors: %zu at rest, at most %zu while delivering to %zu receivers "
      "(cap %zu idle + %zu in flight)\n",
      baseline, most, kReceivers, kMaxIdle, kMaxInFlight);
  EXPECT_LE(most, baseline + kMaxIdle + kMaxInFlight + kSlack);

  const auto metrics = http_get(*admin, "/metrics").body;
  EXPECT_LE(metric(metrics, "outboxd_idle_connections"), static_cast<double>(kMaxIdle));
  EXPECT_GE(metric(metrics, R"(outboxd_idle_connections_closed_total{reason="total_cap"})"),
            static_cast<double>(kReceivers - kMaxIdle - kMaxInFlight));

  // No more traffic: the sweep closes every idle connection once it has been idle 3s.
  EXPECT_TRUE(eventually(
      [&] {
        const auto text = http_get(*admin, "/metrics").body;
        return metric(text, "outboxd_idle_connections") == 0;
      },
      15s, 100ms));
  const auto swept = http_get(*admin, "/metrics").body;
  EXPECT_GE(metric(swept, R"(outboxd_idle_connections_closed_total{reason="idle_timeout"})"), 1);
  EXPECT_LE(open_descriptors(daemon.pid()), baseline + kSlack);
}

}  // namespace
}  // namespace outboxd::test
