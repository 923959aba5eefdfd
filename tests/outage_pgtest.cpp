// PostgreSQL going away, through a real network hop (support/tcp_proxy.hpp): the daemon says so
// once per backoff step for all its sessions (not once per session per retry), says when it is
// back, and catches up on what was committed meanwhile. Also the proxy itself and the wiring of
// pg::connection to the outage log.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <sstream>
#include <thread>

#include "outboxd/pg/connection.hpp"
#include "outboxd/pg/outage_log.hpp"
#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/tcp_proxy.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

std::size_t count_lines(const std::string& log, std::string_view needle) {
  std::size_t n = 0;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    if (line.find(needle) != std::string::npos) ++n;
  }
  return n;
}

std::string through(const tcp_proxy& proxy, const std::string& url) {
  return with_endpoint(url, proxy.host(), proxy.port());
}

// One connect attempt on its own event loop.
std::error_code connect_once(pg::connection& connection, asio::io_context& io,
                             const pg::connection_options& options) {
  auto done = asio::co_spawn(io, connection.connect(options), asio::use_future);
  io.restart();
  io.run();
  return done.get();
}

TEST(outage, unreachable_is_logged_once_per_backoff_step_and_the_backlog_is_delivered_after) {
  constexpr auto kOutage = 3s;
  test_database db;
  receiver hooks;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "acme");
  add_webhook(sql, uuid(11), uuid(1), hooks.url("/hook"));
  subscribe(sql, uuid(11), "user.created");
  const auto server = endpoint_of(db.url());
  tcp_proxy proxy(server.host, server.port);

  // clang-format off
  daemon_process daemon({"run",
                         "--database-url", through(proxy, db.url()),
                         "--allow-cidr", "127.0.0.0/8",
                         "--poll-interval", "200ms",
                         "--reconnect-min", "50ms",
                         "--reconnect-max", "500ms",
                         "--connect-timeout", "1s",
                         "--retry-schedule", "500ms",
                         "--shutdown-timeout", "5s"});
  // clang-format on
  const auto succeeded = [&] {
    return sql.scalar("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'");
  };
  insert_event(sql, uuid(1), "user.created");
  ASSERT_TRUE(hooks.wait_for_count(1, 30s)) << daemon.log();
  // The first outcome is written before the outage, so no write is pending across it.
  ASSERT_TRUE(eventually([&] { return succeeded() == 1; }, 10s, 20ms)) << daemon.log();
  const auto before = daemon.log().size();

  const auto stopped_at = steady_clock::now();
  proxy.stop();
  // Committed while the daemon cannot reach PostgreSQL (the test's own session goes direct).
  insert_event(sql, uuid(1), "user.created");
  EXPECT_TRUE(eventually(
      [&] { return daemon.log().find("PostgreSQL unreachable", before) != std::string::npos; }, 10s,
      10ms))
      << daemon.log();
  // The outage lasts kOutage whatever the daemon does: a scenario length, not a wait for it.
  std::this_thread::sleep_until(stopped_at + kOutage);
  const auto during = daemon.log().substr(before);
  const auto unreachable = count_lines(during, "PostgreSQL unreachable");
  const auto warnings = count_lines(during, " warning ");
  std::printf(
      "outage of 3 s, 4 sessions, --reconnect-min 50ms: %zu 'unreachable' lines, %zu "
      "warning lines in all\n",
      unreachable, warnings);
  {
    std::istringstream in(during);
    for (std::string line; std::getline(in, line);) {
      if (line.find(" warning ") != std::string::npos) std::printf("  %s\n", line.c_str());
    }
  }
  RecordProperty("unreachable_lines", std::to_string(unreachable));
  RecordProperty("warning_lines", std::to_string(warnings));
  proxy.start();

  // One line per doubling step from 50 ms: 0, 50, 150, 350, 750, 1550 ms (3150 is past 3 s).
  EXPECT_GE(unreachable, 1u) << during;
  EXPECT_LE(unreachable, 6u) << during;
  // Besides those, only the listener's one "connection lost" and the like; no per-retry lines.
  EXPECT_LE(warnings, unreachable + 3) << during;

  ASSERT_TRUE(eventually(
      [&] { return daemon.log().find("PostgreSQL reachable again", before) != std::string::npos; },
      15s, 10ms))
      << daemon.log();
  EXPECT_TRUE(hooks.wait_for_count(2, 30s)) << daemon.log();
  EXPECT_TRUE(eventually([&] { return succeeded() == 2; }, 10s, 20ms)) << daemon.log();
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
  const auto after = daemon.log().substr(before);
  EXPECT_EQ(count_lines(after, "PostgreSQL reachable again"), 1u) << after;
}

TEST(outage, a_connection_reports_failed_and_recovered_connects_to_its_outage_log) {
  const auto admin = admin_database_url();
  const auto server = endpoint_of(admin);
  tcp_proxy proxy(server.host, server.port);
  proxy.stop();
  auto outage = std::make_shared<pg::outage_log>();
  asio::io_context io;
  pg::connection connection(io.get_executor());
  const pg::connection_options options{.url = through(proxy, admin),
                                       .application_name = "outboxd test",
                                       .connect_timeout = 2s,
                                       .outage = outage};

  EXPECT_EQ(connect_once(connection, io, options), pg::errc::connect_failed);
  EXPECT_EQ(connect_once(connection, io, options), pg::errc::connect_failed);
  EXPECT_TRUE(outage->in_outage());
  EXPECT_EQ(outage->failures(), 2u);

  proxy.start();
  EXPECT_FALSE(connect_once(connection, io, options)) << connection.last_error();
  EXPECT_FALSE(outage->in_outage());
  EXPECT_EQ(outage->failures(), 0u);
}

TEST(tcp_proxy, stop_closes_forwarded_sessions_and_start_listens_again_on_the_same_port) {
  const auto admin = admin_database_url();
  const auto server = endpoint_of(admin);
  tcp_proxy proxy(server.host, server.port);
  const auto port = proxy.port();
  sql_session session(through(proxy, admin));
  EXPECT_EQ(session.scalar("SELECT 41 + 1"), 42);
  EXPECT_EQ(proxy.open_connections(), 1u);
  EXPECT_GT(proxy.bytes_forwarded(), 0u);

  proxy.stop();
  EXPECT_FALSE(proxy.listening());
  EXPECT_EQ(proxy.open_connections(), 0u);
  const auto lost = session.try_exec("SELECT 1");
  EXPECT_TRUE(pg::is_connection_error(lost.error)) << lost.message;
  EXPECT_THROW({ sql_session refused(through(proxy, admin)); }, std::runtime_error);

  proxy.start();
  EXPECT_TRUE(proxy.listening());
  EXPECT_EQ(proxy.port(), port);
  sql_session again(through(proxy, admin));
  EXPECT_EQ(again.scalar("SELECT 1"), 1);
  EXPECT_EQ(proxy.connections_accepted(), 2u);
}

TEST(tcp_proxy, a_blackhole_keeps_connections_open_and_answers_nothing) {
  const auto admin = admin_database_url();
  const auto server = endpoint_of(admin);
  tcp_proxy proxy(server.host, server.port);
  sql_session before(through(proxy, admin));
  proxy.blackhole(true);

  asio::io_context io;
  pg::connection connection(io.get_executor());
  const auto started = steady_clock::now();
  const auto ec = connect_once(
      connection, io,
      {.url = through(proxy, admin), .application_name = "t", .connect_timeout = 500ms});
  const auto waited = steady_clock::now() - started;
  EXPECT_EQ(ec, pg::errc::connect_failed);
  EXPECT_NE(connection.last_error().find("timed out"), std::string::npos)
      << connection.last_error();
  EXPECT_GE(waited, 450ms) << "the connection was refused rather than left hanging";
  EXPECT_EQ(proxy.connections_accepted(), 2u) << "the blackhole accepts connections";
  // The client gave up and closed its side; the session opened before the blackhole stays open.
  // (The proxy's thread sees the close a moment later.)
  EXPECT_TRUE(eventually([&] { return proxy.open_connections() == 1u; }, 2s))
      << proxy.open_connections();
  const auto forwarded = proxy.bytes_forwarded();
  proxy.blackhole(false);
  sql_session after(through(proxy, admin));
  EXPECT_EQ(after.scalar("SELECT 1"), 1);
  EXPECT_GT(proxy.bytes_forwarded(), forwarded);
}

TEST(tcp_proxy, urls_are_rewritten_to_the_proxy) {
  EXPECT_EQ(
      with_endpoint("postgresql://postgres@127.0.0.1:5432/db?sslmode=disable", "127.0.0.1", 6000),
      "postgresql://postgres@127.0.0.1:6000/db?sslmode=disable");
  EXPECT_EQ(with_endpoint("postgresql://localhost/db", "127.0.0.1", 7),
            "postgresql://127.0.0.1:7/db");
  const auto e = endpoint_of("postgresql://u:p@127.0.0.2:4321/x");
  EXPECT_EQ(e.host, "127.0.0.2");
  EXPECT_EQ(e.port, 4321);
}

}  // namespace
}  // namespace outboxd::test
