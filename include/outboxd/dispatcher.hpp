#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "outboxd/backoff.hpp"
#include "outboxd/pg/connection.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

struct dispatcher_options {
  pg::connection_options database;
  int batch_size = 500;
  // The fallback for notifications lost while the listener was disconnected.
  std::chrono::milliseconds poll_interval{1000};
  backoff_options reconnect;
  // Called after a transaction that created deliveries (the deliverer's wake-up).
  std::function<void()> on_deliveries_created;
};

// What one dispatch transaction did.
struct dispatch_result {
  std::error_code error;
  std::string message;
  std::int64_t events = 0;      // outbox rows moved to outboxd.events
  std::int64_t deliveries = 0;  // delivery rows created
};

// Turns outbox rows into deliveries: claims a batch with FOR UPDATE SKIP LOCKED, inserts one
// delivery per subscribed webhook and moves the events out of the hot table, all in one
// statement, so any number of dispatchers (in one daemon or many) fan each event out exactly once.
class dispatcher {
 public:
  dispatcher(boost::asio::any_io_executor executor, dispatcher_options options, wake_signal& wake);

  // Runs until stop(): on each wake-up or poll tick, dispatches batches until the outbox is empty.
  boost::asio::awaitable<void> run();
  // Finishes the batch in flight, then run() returns.
  void stop();

  // One batch on the dispatcher's own connection (connecting first if needed).
  boost::asio::awaitable<dispatch_result> dispatch_batch();

  std::uint64_t events_dispatched() const { return events_dispatched_.load(); }
  std::uint64_t deliveries_created() const { return deliveries_created_.load(); }
  std::uint64_t wakeups_by_signal() const { return wakeups_by_signal_.load(); }
  int backend_pid() const { return backend_pid_.load(); }

 private:
  boost::asio::awaitable<bool> drain();

  dispatcher_options options_;
  wake_signal& wake_;
  pg::connection connection_;
  backoff backoff_;
  boost::asio::steady_timer retry_timer_;
  bool stopping_ = false;
  // Read by tests and metrics from other threads.
  std::atomic<std::uint64_t> events_dispatched_{0};
  std::atomic<std::uint64_t> deliveries_created_{0};
  std::atomic<std::uint64_t> wakeups_by_signal_{0};
  std::atomic<int> backend_pid_{0};
};

}  // namespace outboxd
