#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "outboxd/backoff.hpp"
#include "outboxd/pg/connection.hpp"

namespace outboxd::pg {

// The channel the outbox trigger notifies (sql/migrations/0001_outbox.sql).
inline constexpr std::string_view kOutboxChannel = "outboxd";

struct listener_options {
  connection_options database;
  std::string channel{kOutboxChannel};
  backoff_options reconnect;
  // With no traffic, the session is checked this often, so a silently dead connection is found.
  std::chrono::milliseconds health_check_interval{30'000};
};

// The dedicated LISTEN session. Calls on_wake for every batch of notifications, and also right
// after each (re)connect: notifications sent while it was away are lost, so whoever listens
// must look for work it missed.
class listener {
 public:
  listener(boost::asio::any_io_executor executor, listener_options options,
           std::function<void()> on_wake);

  // Runs until stop(): connect, LISTEN, wait for notifications; reconnect with backoff.
  boost::asio::awaitable<void> run();
  void stop();

  bool listening() const { return listening_.load(); }
  std::uint64_t sessions_started() const { return sessions_started_.load(); }
  std::uint64_t notifications_received() const { return notifications_received_.load(); }
  int backend_pid() const { return backend_pid_.load(); }
  // Read on the listener's executor only.
  std::uint64_t reconnects() const { return connection_.reconnects(); }

 private:
  boost::asio::awaitable<bool> start_session();
  boost::asio::awaitable<void> listen_until_lost();

  listener_options options_;
  std::function<void()> on_wake_;
  connection connection_;
  backoff backoff_;
  boost::asio::steady_timer retry_timer_;
  bool stopping_ = false;
  // Read by tests and metrics from other threads.
  std::atomic<bool> listening_{false};
  std::atomic<std::uint64_t> sessions_started_{0};
  std::atomic<std::uint64_t> notifications_received_{0};
  std::atomic<int> backend_pid_{0};
};

}  // namespace outboxd::pg
