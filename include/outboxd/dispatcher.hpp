#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

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
  std::int64_t set_aside = 0;   // outbox rows moved to outboxd.poison_events
};

// Turns outbox rows into deliveries: claims a batch with FOR UPDATE SKIP LOCKED, inserts one
// delivery per subscribed webhook and moves the events out of the hot table, all in one
// statement, so any number of dispatchers (in one daemon or many) fan each event out exactly once.
//
// A batch failing with an error one row can cause (SQLSTATE classes 22, 23, 54) is split in
// halves down to single rows; a row that fails alone is set aside in outboxd.poison_events, so it
// never stops the rows behind it. Any other failure (PostgreSQL away, the IAM's tables changed
// under the adapter, a timeout) leaves the outbox as it is: the whole batch is retried after a
// backoff, the error logged once, and dispatch resumes by itself when the cause goes away.
class dispatcher {
 public:
  dispatcher(boost::asio::any_io_executor executor, dispatcher_options options, wake_signal& wake);

  // Runs until stop(): on each wake-up or poll tick, dispatches batches until the outbox is empty.
  boost::asio::awaitable<void> run();
  // Finishes the batch in flight, then run() returns.
  void stop();

  // One batch of up to batch_size outbox rows on the dispatcher's own connection (connecting
  // first if needed): each row is fanned out or set aside, unless the batch fails as a whole.
  boost::asio::awaitable<dispatch_result> dispatch_batch();

  std::uint64_t events_dispatched() const { return events_dispatched_.load(); }
  std::uint64_t deliveries_created() const { return deliveries_created_.load(); }
  std::uint64_t wakeups_by_signal() const { return wakeups_by_signal_.load(); }
  // Woken by the poll interval, with no notification.
  std::uint64_t wakeups_by_poll() const { return wakeups_by_poll_.load(); }
  // Read on the dispatcher's executor only.
  std::uint64_t reconnects() const { return connection_.reconnects(); }
  int backend_pid() const { return backend_pid_.load(); }
  std::uint64_t events_set_aside() const { return events_set_aside_.load(); }
  // Batches that failed as a whole (and were retried after a backoff).
  std::uint64_t batch_failures() const { return batch_failures_.load(); }
  // Why dispatch is paused; empty while it works.
  std::string last_error() const;

 private:
  boost::asio::awaitable<bool> drain();
  // The statement for the oldest `limit` unlocked rows (or for `only_id`, already locked).
  boost::asio::awaitable<pg::outcome> fan_out(int limit, std::optional<std::int64_t> only_id);
  // The oldest unlocked row alone, in a transaction: fanned out, or set aside if it fails.
  boost::asio::awaitable<dispatch_result> dispatch_one();
  boost::asio::awaitable<void> roll_back();
  void count(const dispatch_result& result);
  void note_failure(const dispatch_result& batch);
  void note_success();

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
  std::atomic<std::uint64_t> wakeups_by_poll_{0};
  std::atomic<int> backend_pid_{0};
  std::atomic<std::uint64_t> events_set_aside_{0};
  std::atomic<std::uint64_t> batch_failures_{0};
  mutable std::mutex last_error_mutex_;
  std::string last_error_;
};

}  // namespace outboxd
