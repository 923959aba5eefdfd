#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "outboxd/pg/error.hpp"
#include "outboxd/pg/result.hpp"
#include "outboxd/pg/transport.hpp"

struct pg_conn;  // libpq's PGconn

namespace outboxd::pg {

class outage_log;

using clock = std::chrono::steady_clock;
using param = std::optional<std::string_view>;  // nullopt is SQL NULL

// Our client-side deadline trails the server's statement_timeout, so a slow statement normally
// ends with the server's clean error and the session survives; the deadline is the backstop for a
// server that stopped answering at all.
inline constexpr std::chrono::milliseconds kClientDeadlineSlack{2000};
inline constexpr std::chrono::milliseconds kDaemonLockTimeout{500};

struct connection_options {
  std::string url;               // libpq connection URI or key=value string; never logged
  std::string application_name;  // shows in pg_stat_activity, e.g. "outboxd dispatcher"
  std::chrono::milliseconds connect_timeout{5000};
  // Applied to the session (SET statement_timeout) and, with a little slack, as our own
  // client-side deadline on every query, so no statement can hang the daemon.
  std::chrono::milliseconds statement_timeout{30000};
  // How long a statement may wait for a lock (0: as long as the statement may run). The daemon's
  // sessions use kDaemonLockTimeout, below PostgreSQL's default deadlock_timeout (1 s): when the
  // IAM's own DDL and an outboxd query wait for each other, outboxd's gives up first and is
  // retried, so the IAM's migration is never the one PostgreSQL cancels.
  std::chrono::milliseconds lock_timeout{0};
  // Told of every connect attempt's result, so one component speaks for all the daemon's
  // sessions when PostgreSQL is away (see outage_log.hpp). Null: nothing is reported.
  std::shared_ptr<outage_log> outage;
};

// The outcome of one statement: an error code with the server's words, or the last result.
struct outcome {
  std::error_code error;
  // One line, at most ~512 bytes, never the DSN. For a statement error: severity, the server's
  // primary message and the SQLSTATE, never DETAIL or CONTEXT (they can quote row data).
  std::string message;
  std::string sqlstate;  // five characters when the server reported an error
  // The server's primary message alone (no DETAIL, which may hold data); a data exception's
  // quoted input is replaced by "...", as in `message`.
  std::string primary;
  result rows;

  explicit operator bool() const { return !error; }
};

struct notification {
  std::string channel;
  std::string payload;
};

// One PostgreSQL session, non-blocking, driven by Asio on the session's socket. The only code in
// outboxd that calls libpq. Operations on one connection must not overlap: each owner runs one
// statement at a time. Every wait has a deadline.
class connection {
 public:
  explicit connection(boost::asio::any_io_executor executor);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Opens the session and applies the session settings. On failure, last_error() says why (one
  // line). Reports the result to options.outage when set.
  boost::asio::awaitable<std::error_code> connect(const connection_options& options);

  // connect() unless the session is already open: what an owner calls before each unit of work.
  boost::asio::awaitable<std::error_code> ensure_connected(const connection_options& options);

  // One statement with $n parameters (extended protocol, text format).
  boost::asio::awaitable<outcome> execute(std::string_view sql, std::span<const param> params = {});
  // Convenience: execute(sql, a, b) with string-like or param arguments. A coroutine itself, so
  // the parameter array lives in its frame for as long as the statement runs.
  template <typename... Params>
  requires(sizeof...(Params) > 0) boost::asio::awaitable<outcome> execute(std::string_view sql,
                                                                          Params... params) {
    const std::array<param, sizeof...(Params)> values{param(params)...};
    co_return co_await execute(sql, std::span<const param>(values));
  }

  // Several statements in one string (simple protocol), as a migration file holds them. The
  // client-side deadline defaults to the statement timeout's; a session that turned its
  // statement_timeout off (migrations) passes its own.
  boost::asio::awaitable<outcome> execute_script(std::string_view sql,
                                                 std::optional<clock::time_point> deadline = {});

  // For LISTEN: waits until the server sends something or the deadline passes (errc::timeout,
  // the session stays open), then reads it. Notifications are then taken one by one.
  boost::asio::awaitable<std::error_code> wait_for_input(clock::time_point deadline);
  std::optional<notification> take_notification();

  bool is_open() const;
  // Closes the session; a suspended operation on it completes with errc::closed.
  void close();

  int backend_pid() const;
  // How the open session reaches its server (empty when closed).
  session_transport transport() const;
  bool in_failed_transaction() const;
  std::string quote_identifier(std::string_view identifier) const;
  const std::string& last_error() const { return last_error_; }
  // Sessions opened after an earlier one of this object (each one a reconnect).
  std::uint64_t reconnects() const { return reconnects_; }

 private:
  using wait_type = boost::asio::posix::descriptor_base::wait_type;

  boost::asio::awaitable<std::error_code> open_session(const connection_options& options);
  boost::asio::awaitable<std::error_code> wait_socket(wait_type what, clock::time_point deadline);
  boost::asio::awaitable<outcome> flush_and_collect(clock::time_point deadline);
  void attach_socket();
  std::error_code fail(errc code, std::string message);
  clock::time_point query_deadline() const;

  boost::asio::any_io_executor executor_;
  boost::asio::steady_timer timer_;
  std::optional<boost::asio::posix::stream_descriptor> socket_;
  // Guards the deadline timer's handler (see wait_socket).
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::uint64_t wait_generation_ = 0;
  bool timed_out_ = false;
  pg_conn* conn_ = nullptr;
  connection_options options_;
  std::string last_error_;
  bool connected_before_ = false;
  std::uint64_t reconnects_ = 0;
};

}  // namespace outboxd::pg
