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
#include "outboxd/database_clock.hpp"
#include "outboxd/pg/connection.hpp"
#include "outboxd/retry_policy.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

class metrics;

// What a lease must cover. A claim holds a delivery for `duration`; in that time its holder may
// wait for a slot, send one request (at most request_timeout) and write the outcome (at most
// write_bound(): one statement's timeout and the client's slack). An attempt that cannot fit both
// in what is left of its lease is handed back unsent, and an outcome still unwritten when its
// lease ends is abandoned: after that, another daemon may claim the delivery and send it again.
struct lease_terms {
  std::chrono::milliseconds duration{60'000};
  std::chrono::milliseconds request_timeout{15'000};
  std::chrono::milliseconds statement_timeout{30'000};  // the outcome write's session's

  // An outcome's write is one statement: its timeout, and the client's slack behind it.
  std::chrono::milliseconds write_bound() const {
    return statement_timeout + pg::kClientDeadlineSlack;
  }

  // Kept spare between a request's deadline plus its write and the end of its lease.
  static constexpr std::chrono::milliseconds kMargin{5'000};

  // The shortest lease that can hold a request and its write.
  std::chrono::milliseconds minimum() const { return request_timeout + write_bound() + kMargin; }
  // Empty when the terms hold; otherwise what is wrong, for an operator.
  std::string problem() const;
};

// A delivery a worker now holds under lease, with what it needs to send it.
struct claimed_delivery {
  std::int64_t id = 0;
  std::int64_t claim_token = 0;  // this claim's fence: every write of its holder carries it
  int attempt = 0;               // this attempt's number (attempt rows run 1, 2, ... per delivery)
  int try_number = 0;            // its place in the retry schedule: expired leases do not count
  std::chrono::steady_clock::time_point lease_deadline;  // by this daemon's steady clock
  // Its lease expired too often (a crash loop): the claim made it dead; nothing is to be sent.
  bool crash_looped = false;
  std::string message_id;
  std::string webhook_id;
  bool webhook_found = false;       // false: gone from the IAM, or unsubscribed from this event
  bool webhook_subscribed = false;  // still subscribed to this event in the event's realm
  bool webhook_disabled = false;    // listed in outboxd.disabled_webhooks (it answered 410)
  std::string url;
  std::string headers_json;
  std::string secret;
  // The webhook's secret before its last change, while --secret-grace lasts; else empty.
  std::string previous_secret;
  std::int64_t event_id = 0;
  std::string event;
  std::string timestamp;  // RFC 3339 UTC, microseconds
  std::string resource_id;
  std::string data;                                     // jsonb text, "null" for SQL NULL
  std::chrono::system_clock::time_point event_created;  // the outbox row's created_at
  bool lease_expired = false;  // the claim recorded its previous holder's attempt as expired
  // The webhook's own policy (outboxd.webhook_policies); unset parts are the daemon's.
  retry_overrides retry;
  std::size_t max_in_flight = 0;  // the webhook's own limit on requests in flight; 0: none
};

// The outcome of one attempt and the delivery's next state, as it will be written. Times are
// relative: PostgreSQL turns them into timestamps with its own clock.
struct attempt_record {
  enum class next_status { pending, succeeded, dead, cancelled };

  std::int64_t delivery_id = 0;
  std::int64_t claim_token = 0;
  int attempt = 0;
  std::string webhook_id;  // not written: for whoever watches outcomes (on_recorded)
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point lease_deadline;
  std::chrono::milliseconds duration{0};
  int status_code = 0;  // 0: no HTTP response
  std::string error_code;
  std::string error_detail;
  std::string response_body;  // already bounded by the HTTP client
  bool succeeded = false;
  next_status next = next_status::pending;
  std::chrono::milliseconds next_delay{0};  // for pending: from the write until it is due
  bool details_dropped = false;  // written without body and detail, which could not be stored
  std::chrono::system_clock::time_point event_created;  // for the commit-to-success latency

  // A record for this claim's attempt, starting now.
  static attempt_record of(const claimed_delivery& delivery);
};

struct delivery_store_options {
  pg::connection_options database;
  std::string instance_id;  // written to leased_by, for operators
  lease_terms lease;
  // A delivery whose lease expired this many times without an outcome is dead ('crash_loop').
  int max_expired_attempts = 5;
  std::size_t max_write_batch = 1000;
  // A batch's JSON is bounded too: jsonb has a hard size limit, and one statement should not
  // carry megabytes of response bodies.
  std::size_t max_write_batch_bytes = 4 << 20;
  // The offset to PostgreSQL's clock is measured before the first claim and then this often.
  std::chrono::milliseconds clock_check_interval{30'000};
  backoff_options reconnect;
  // Called after each successful write, so whoever waits for the queue to shrink can go on.
  std::function<void()> on_written;
  // Told of every outcome that landed (metrics.hpp); none when null.
  metrics* observer = nullptr;
  // Called with each outcome as it is queued (reporting to the IAM); must not block.
  std::function<void(const attempt_record&)> on_recorded;
  // How long a webhook's previous secret still signs after the claim first sees a new one.
  std::chrono::milliseconds secret_grace{std::chrono::hours(24)};
};

struct claim_result {
  std::error_code error;
  std::string message;
  std::vector<claimed_delivery> deliveries;
};

// The lease protocol, in one place: outboxd.deliveries and outboxd.attempts as the delivery
// engine sees them.
//
// - Claim: due deliveries nobody holds (FOR UPDATE SKIP LOCKED, so replicas never share one) get
//   a new claim token and a lease that ends at the database's now() + lease. A delivery whose
//   previous lease expired has that attempt recorded as 'lease_expired' first.
// - Write: outcomes are batched on a second session. Each lands only while the delivery is still
//   held by that claim (same token) and the lease has not ended by the database's clock; a stale,
//   late or replayed write changes nothing. Outcomes still queued when their lease ends (by this
//   daemon's steady clock, measured from before the claim was sent, so always earlier) are
//   abandoned instead of written.
// - Release: unsent work goes back without an attempt, fenced the same way.
// - Clocks: every due time is computed by PostgreSQL from a relative delay.
class delivery_store {
 public:
  delivery_store(boost::asio::any_io_executor executor, delivery_store_options options);

  boost::asio::awaitable<claim_result> claim(std::size_t limit);

  // Is there enough of the lease left to send now and still write the outcome in time?
  bool may_send(const claimed_delivery& delivery, std::chrono::steady_clock::time_point now) const;

  // Queued for the writer; write order is kept.
  void record(attempt_record record);
  // Gives a claimed delivery back unsent, due again after `delay`: no attempt is spent.
  void release(const claimed_delivery& delivery, std::chrono::milliseconds delay);
  // 410 Gone: no more deliveries for this webhook; its pending ones are cancelled.
  void disable_webhook(const std::string& webhook_id, const std::string& reason);
  // The webhook's endpoint is down (circuit open): its pending deliveries wait `delay` more.
  void defer_webhook(const std::string& webhook_id, std::chrono::milliseconds delay);
  // An endpoint's circuit opened for `delay` (recorded in outboxd.open_circuits), or closed
  // (nullopt: this daemon's row is removed), for `outboxd webhooks` to show.
  void record_circuit(const std::string& endpoint, std::optional<std::chrono::milliseconds> delay);

  // Writes queued work until stop() and the queue is empty.
  boost::asio::awaitable<void> run_writer();
  void stop();

  const database_clock& clock() const { return clock_; }
  std::size_t queued_writes() const;
  std::uint64_t writes_failed() const { return writes_failed_; }
  std::uint64_t writes_dropped() const { return writes_dropped_; }
  std::uint64_t outcomes_abandoned() const { return outcomes_abandoned_; }
  std::uint64_t outcomes_fenced_out() const { return outcomes_fenced_out_; }
  std::uint64_t write_statements() const { return write_statements_; }
  // Sessions opened again, claim and write together.
  std::uint64_t reconnects() const;

 private:
  struct released_delivery {
    std::int64_t delivery_id = 0;
    std::int64_t claim_token = 0;
    std::chrono::milliseconds delay{0};
  };
  struct disable_entry {
    std::string webhook_id;
    std::string reason;
  };
  struct webhook_deferral {
    std::string webhook_id;
    std::chrono::milliseconds delay{0};
  };
  struct circuit_change {
    std::string endpoint;
    std::optional<std::chrono::milliseconds> open_for;  // nullopt: closed
  };

  boost::asio::awaitable<void> measure_clock();
  boost::asio::awaitable<bool> flush();
  boost::asio::awaitable<std::error_code> write_records(std::size_t count, std::string json);
  boost::asio::awaitable<std::error_code> write_releases(std::size_t count, std::string json);
  boost::asio::awaitable<std::error_code> write_disable();
  boost::asio::awaitable<std::error_code> write_webhook_deferral();
  boost::asio::awaitable<std::error_code> write_circuit_change();
  void abandon_expired_outcomes();
  std::size_t batch_limit() const;
  // After a failed write: false to back off and retry (transport), true to go on at once.
  template <typename Queue>
  bool after_failure(std::error_code error, std::size_t count, Queue& queue, std::string_view what);

  delivery_store_options options_;
  std::string lease_interval_;
  std::string max_expired_attempts_;
  std::string secret_grace_;
  pg::connection claim_connection_;
  pg::connection write_connection_;
  database_clock clock_;
  std::optional<std::chrono::steady_clock::time_point> next_clock_check_;
  wake_signal writer_wake_;
  backoff backoff_;
  boost::asio::steady_timer retry_timer_;
  std::deque<attempt_record> records_;
  std::deque<released_delivery> releases_;
  std::deque<disable_entry> disables_;
  std::deque<webhook_deferral> webhook_deferrals_;
  std::deque<circuit_change> circuit_changes_;
  bool stopping_ = false;
  std::uint64_t writes_failed_ = 0;
  std::uint64_t writes_dropped_ = 0;
  std::uint64_t outcomes_abandoned_ = 0;
  std::uint64_t outcomes_fenced_out_ = 0;
  std::uint64_t write_statements_ = 0;
  std::size_t isolate_remaining_ = 0;  // entries still to write one by one after a bad batch
  std::string last_sqlstate_;          // of the last failed write
};

}  // namespace outboxd
