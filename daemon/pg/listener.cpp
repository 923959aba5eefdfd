#include "outboxd/pg/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "outboxd/log.hpp"

namespace outboxd::pg {
namespace asio = boost::asio;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("listener");
  return *component;
}

}  // namespace

listener::listener(asio::any_io_executor executor, listener_options options,
                   std::function<void()> on_wake)
    : options_(std::move(options)),
      on_wake_(std::move(on_wake)),
      connection_(executor),
      backoff_(options_.reconnect),
      retry_timer_(executor) {}

void listener::stop() {
  stopping_ = true;
  retry_timer_.cancel();
  connection_.close();
}

asio::awaitable<void> listener::run() {
  while (!stopping_) {
    const bool started = co_await start_session();
    if (started) co_await listen_until_lost();
    if (stopping_) break;
    const auto delay = backoff_.next();
    log().debug("listener: reconnecting in {} ms", delay.count());
    retry_timer_.expires_after(delay);
    co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  listening_ = false;
}

asio::awaitable<bool> listener::start_session() {
  const auto connect_error = co_await connection_.connect(options_.database);
  if (connect_error) {
    // The outage log reports connect failures (outage_log.hpp).
    if (!stopping_) log().debug("listener: cannot connect: {}", connection_.last_error());
    co_return false;
  }
  const auto statement = "LISTEN " + connection_.quote_identifier(options_.channel);
  const auto listen = co_await connection_.execute_script(statement);
  if (!listen) {
    const auto level =
        is_connection_error(listen.error) ? spdlog::level::debug : spdlog::level::warn;
    if (!stopping_) log().log(level, "listener: LISTEN failed: {}", listen.message);
    connection_.close();
    co_return false;
  }
  backoff_.reset();
  backend_pid_ = connection_.backend_pid();
  listening_ = true;
  ++sessions_started_;
  log().info("listener: listening on channel {}", options_.channel);
  // Anything committed while no session listened sent its notification into the void.
  on_wake_();
  co_return true;
}

asio::awaitable<void> listener::listen_until_lost() {
  while (!stopping_) {
    // Drain first: LISTEN's reply or a health check may have brought notifications along.
    bool woke = false;
    while (connection_.take_notification()) {
      ++notifications_received_;
      woke = true;
    }
    if (woke) on_wake_();
    const auto deadline = clock::now() + options_.health_check_interval;
    const auto ec = co_await connection_.wait_for_input(deadline);
    if (ec == errc::timeout) {
      // Quiet for a while: make sure the session is still alive before waiting again.
      const auto ping = co_await connection_.execute("SELECT 1");
      if (!ping) {
        if (!stopping_) log().warn("listener: health check failed: {}", ping.message);
        break;
      }
    } else if (ec) {
      if (!stopping_) log().warn("listener: connection lost: {}", connection_.last_error());
      break;
    }
  }
  listening_ = false;
  connection_.close();
}

}  // namespace outboxd::pg
