#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "outboxd/backoff.hpp"
#include "outboxd/pg/connection.hpp"

namespace outboxd {

struct retention_options {
  pg::connection_options database;
  // Finished deliveries whose last change is older than this go, with their attempts, and so do
  // fanned-out events older than this that have no delivery left. 0 keeps everything.
  std::chrono::milliseconds retention{std::chrono::hours(168)};
  std::chrono::milliseconds interval{std::chrono::minutes(1)};  // between rounds
  int batch_rows = 500;  // deliveries (and events) per statement
  int max_batches_per_round = 200;
  std::chrono::milliseconds pause{50};  // between batches, so the IAM's traffic goes first
  backoff_options reconnect;
};

// What one round did.
struct retention_round {
  std::error_code error;
  std::string message;
  std::uint64_t deliveries = 0;
  std::uint64_t attempts = 0;
  std::uint64_t events = 0;
  std::uint64_t previous_secrets = 0;  // expired or orphaned rows of outboxd.webhook_secrets
  bool bounded = false;                // stopped at max_batches_per_round with more to purge
};

// Purges history that no one waits for any more, in small short transactions on its own session:
// - a delivery only when finished (succeeded, dead, cancelled) and unchanged for the retention,
//   with its attempts; never a pending or delivering one;
// - an event only when it is older than the retention and has no delivery left at all (so the
//   ON DELETE CASCADE from events to deliveries never has anything to take);
// - never outboxd.poison_events: each waits for an operator to fix and replay it.
// Each round also forgets previous webhook secrets whose grace is over, and the secrets of
// webhooks the IAM no longer has (see sql/migrations/0007_webhook_secrets.sql).
class retention {
 public:
  retention(boost::asio::any_io_executor executor, retention_options options);

  // Rounds every interval until stop(); at once again when a round hit its bound.
  boost::asio::awaitable<void> run();
  void stop();

  // One round, now (tests, and run()).
  boost::asio::awaitable<retention_round> purge_round();

  // Rows purged so far, by table (readable from any thread).
  std::uint64_t deliveries_purged() const { return deliveries_purged_.load(); }
  std::uint64_t attempts_purged() const { return attempts_purged_.load(); }
  std::uint64_t events_purged() const { return events_purged_.load(); }
  std::uint64_t previous_secrets_purged() const { return previous_secrets_purged_.load(); }
  std::uint64_t rounds() const { return rounds_.load(); }
  std::uint64_t rounds_failed() const { return rounds_failed_.load(); }

 private:
  struct cursor {
    std::string dispatched_at;  // of the last event looked at, as PostgreSQL printed it
    std::string id;
  };
  boost::asio::awaitable<pg::outcome> purge_batch(cursor& position, retention_round& round,
                                                  bool& more);
  boost::asio::awaitable<void> roll_back();

  retention_options options_;
  std::string retention_interval_;
  std::string batch_rows_;
  pg::connection connection_;
  boost::asio::steady_timer timer_;
  backoff backoff_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> deliveries_purged_{0};
  std::atomic<std::uint64_t> attempts_purged_{0};
  std::atomic<std::uint64_t> events_purged_{0};
  std::atomic<std::uint64_t> previous_secrets_purged_{0};
  std::atomic<std::uint64_t> rounds_{0};
  std::atomic<std::uint64_t> rounds_failed_{0};
  std::string last_error_;
};

}  // namespace outboxd
