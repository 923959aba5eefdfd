#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "outboxd/backoff.hpp"
#include "outboxd/pg/connection.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

// A delivery a worker now holds under lease, with what it needs to send it.
struct claimed_delivery {
  std::int64_t id = 0;
  int attempt = 0;  // this attempt's number: the fence for writing its outcome
  std::string message_id;
  std::string webhook_id;
  bool webhook_found = false;     // false: gone from outboxd.subscriptions (deleted in the IAM)
  bool webhook_disabled = false;  // listed in outboxd.disabled_webhooks (it answered 410)
  std::string url;
  std::string headers_json;
  std::string secret;
  std::int64_t event_id = 0;
  std::string event;
  std::string timestamp;  // RFC 3339 UTC, microseconds
  std::string resource_id;
  std::string data;  // jsonb text, "null" for SQL NULL
};

// The outcome of one attempt and the delivery's next state, as it will be written.
struct attempt_record {
  enum class next_status { pending, succeeded, dead, cancelled };

  std::int64_t delivery_id = 0;
  int attempt = 0;
  std::chrono::system_clock::time_point started_at;
  std::chrono::milliseconds duration{0};
  int status_code = 0;  // 0: no HTTP response
  std::string error_code;
  std::string error_detail;
  std::string response_body;  // already bounded by the HTTP client
  bool succeeded = false;
  next_status next = next_status::pending;
  std::chrono::system_clock::time_point next_attempt_at;  // for pending
};

// A claimed delivery handed back unsent: due again at `due`, with its attempt number restored.
struct released_delivery {
  std::int64_t delivery_id = 0;
  int attempt = 0;
  std::chrono::system_clock::time_point due;
};

struct delivery_store_options {
  pg::connection_options database;
  std::string instance_id;  // written to leased_by, for operators
  // How long a claim holds a delivery. A crashed daemon's deliveries are claimable again after
  // this; it must exceed the longest wait in the scheduler plus the HTTP request timeout.
  std::chrono::milliseconds lease{60'000};
  std::size_t max_write_batch = 1000;
  backoff_options reconnect;
  // Called after each successful write, so whoever waits for the queue to shrink can go on.
  std::function<void()> on_written;
};

struct claim_result {
  std::error_code error;
  std::string message;
  std::vector<claimed_delivery> deliveries;
};

// outboxd.deliveries and outboxd.attempts as the delivery engine sees them. Claims due
// deliveries in batches under a lease (FOR UPDATE SKIP LOCKED, so replicas never share one), and
// writes outcomes in batches on a second session, each fenced by its attempt number: an outcome
// lands only while the delivery is still 'delivering' at that attempt, so a worker that lost its
// lease cannot overwrite a newer attempt. Writes are idempotent, so a batch whose commit was not
// confirmed is simply written again.
class delivery_store {
 public:
  delivery_store(boost::asio::any_io_executor executor, delivery_store_options options);

  boost::asio::awaitable<claim_result> claim(std::size_t limit);

  // Queued for the writer; write order is kept.
  void record(attempt_record record);
  // Gives a claimed delivery back unsent, due at `due`: no attempt is spent (breaker, shutdown).
  void release(std::int64_t delivery_id, int attempt, std::chrono::system_clock::time_point due);
  // 410 Gone: no more deliveries for this webhook; its pending ones are cancelled.
  void disable_webhook(const std::string& webhook_id, const std::string& reason);
  // The webhook's endpoint is down (circuit open): its pending deliveries wait until `until`.
  void defer_webhook(const std::string& webhook_id, std::chrono::system_clock::time_point until);

  // Writes queued work until stop() and the queue is empty.
  boost::asio::awaitable<void> run_writer();
  void stop();

  std::size_t queued_writes() const;
  std::uint64_t writes_failed() const { return writes_failed_; }
  std::uint64_t writes_dropped() const { return writes_dropped_; }

 private:
  struct disable_entry {
    std::string webhook_id;
    std::string reason;
  };
  struct webhook_deferral {
    std::string webhook_id;
    std::chrono::system_clock::time_point until;
  };

  boost::asio::awaitable<bool> flush();
  boost::asio::awaitable<std::error_code> write_records(std::size_t count);
  boost::asio::awaitable<std::error_code> write_releases(std::size_t count);
  boost::asio::awaitable<std::error_code> write_disable();
  boost::asio::awaitable<std::error_code> write_webhook_deferral();
  std::size_t batch_size(std::size_t queued) const;
  // After a failed write: false to back off and retry (transport), true to go on at once.
  template <typename Queue>
  bool after_failure(std::error_code error, std::size_t count, Queue& queue, std::string_view what);

  delivery_store_options options_;
  std::string lease_interval_;
  pg::connection claim_connection_;
  pg::connection write_connection_;
  wake_signal writer_wake_;
  backoff backoff_;
  boost::asio::steady_timer retry_timer_;
  std::deque<attempt_record> records_;
  std::deque<released_delivery> releases_;
  std::deque<disable_entry> disables_;
  std::deque<webhook_deferral> webhook_deferrals_;
  bool stopping_ = false;
  std::uint64_t writes_failed_ = 0;
  std::uint64_t writes_dropped_ = 0;
  std::size_t isolate_remaining_ = 0;  // entries still to write one by one after a bad batch
  std::string last_sqlstate_;          // of the last failed write
};

}  // namespace outboxd
