#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "outboxd/backoff.hpp"
#include "outboxd/delivery_store.hpp"
#include "outboxd/http/client.hpp"
#include "outboxd/log_throttle.hpp"
#include "outboxd/retry_policy.hpp"
#include "outboxd/scheduler.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

struct deliverer_options {
  std::size_t claim_batch = 256;
  std::chrono::milliseconds poll_interval{1000};  // look for due retries at least this often
  std::size_t max_payload_bytes = 1 << 20;        // a bigger body is dead at once
  // Claiming pauses while this many outcomes wait to be written (PostgreSQL slow or away), so
  // finished work cannot pile up in memory.
  std::size_t max_unwritten_outcomes = 4096;
  scheduler_options scheduling;
  backoff_options reconnect;
};

// The delivery engine's loop: claims due deliveries as the scheduler has room, builds each
// message, sends it, decides the next state with the retry policy and hands the outcome to the
// store. One attempt is one coroutine; all run on the deliverer's executor.
class deliverer {
 public:
  deliverer(boost::asio::any_io_executor executor, deliverer_options options, delivery_store& store,
            http::client& client, const retry_policy& policy, wake_signal& work_ready);

  // Until stop(); then hands back what waits unsent and lets in-flight attempts finish.
  boost::asio::awaitable<void> run();
  void stop();
  // The store wrote a batch: room to claim again if the write backlog held claiming back.
  void on_store_written() { slot_freed_.notify(); }
  // A reload of the limits and breaker settings (on the deliverer's executor).
  void set_scheduling(const scheduler_options& scheduling);

  std::size_t in_flight() const { return scheduler_.in_flight(); }
  // Endpoints whose circuit is open now (on the deliverer's executor only).
  std::size_t open_circuits() const {
    return scheduler_.open_circuits(std::chrono::steady_clock::now());
  }
  // How often an endpoint's circuit has opened (readable from any thread).
  std::uint64_t circuit_openings() const {
    return circuit_openings_.load(std::memory_order_relaxed);
  }

 private:
  struct work {
    claimed_delivery delivery;
    std::shared_ptr<const std::string> body;
    http::endpoint_url url;
    std::string endpoint;        // the scheduler's key: scheme, host and port
    bool breaker_trial = false;  // the half-open circuit's test request
  };
  using actions = scheduler<work>::actions;

  void accept(std::vector<claimed_delivery> claimed);
  void apply(actions& next);
  boost::asio::awaitable<void> attempt(work item);
  boost::asio::awaitable<void> send(work& item, attempt_record& record, endpoint_signal& signal);
  void finish_unsent(const claimed_delivery& delivery, std::string error_code,
                     std::string error_detail, attempt_record::next_status next);
  // Queues the outcome; warns an operator (rate-limited per webhook) when they must act.
  void record_outcome(const claimed_delivery& delivery, attempt_record record);
  void warn_operator(const claimed_delivery& delivery, std::string_view code,
                     std::string_view what);
  void settle(attempt_record& record, const claimed_delivery& delivery, int status_code,
              std::optional<std::chrono::milliseconds> retry_after);

  boost::asio::any_io_executor executor_;
  deliverer_options options_;
  delivery_store& store_;
  http::client& client_;
  const retry_policy& policy_;
  wake_signal& work_ready_;
  wake_signal slot_freed_;
  scheduler<work> scheduler_;
  backoff backoff_;
  log_throttle operator_warnings_;
  boost::asio::steady_timer retry_timer_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> circuit_openings_{0};
};

}  // namespace outboxd
