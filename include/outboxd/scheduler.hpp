#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "outboxd/circuit_breaker.hpp"

namespace outboxd {

// An endpoint is scheme, host and port (http::endpoint_url::key()): one receiver server, whatever
// the path. Limits and the breaker protect that server, so every webhook on it shares them.
struct scheduler_options {
  std::size_t max_in_flight = 256;              // requests in flight, all endpoints together
  std::size_t max_in_flight_per_endpoint = 16;  // so one slow endpoint cannot take every slot
  std::size_t max_queued_per_endpoint = 64;     // claimed work waiting for that endpoint's slot
  circuit_breaker_options breaker;
};

// A webhook's own limit on its requests in flight (outboxd.webhook_policies), on top of its
// endpoint's: several webhooks may share one endpoint. Zero: no limit of its own.
struct webhook_limit {
  std::string webhook_id;
  std::size_t max_in_flight = 0;
};

// Decides when a claimed delivery may go: global, per-endpoint and per-webhook limits on requests
// in flight, a bounded wait queue per endpoint, and a circuit breaker per endpoint. Pure
// bookkeeping, no I/O: it answers with what to start and what to hand back to the database for
// later (a deferral spends no attempt). Single-threaded. T is the caller's work item.
template <typename T>
class scheduler {
 public:
  using clock = std::chrono::steady_clock;

  struct deferral {
    T item;
    clock::time_point until;
  };
  struct start_item {
    T item;
    bool trial = false;  // the half-open circuit's test request: pass it back to finish()
  };
  struct actions {
    std::vector<start_item> start;  // send these now (each holds a slot until finish())
    std::vector<deferral> defer;    // give these back to the store, due again at `until`
    // Set when finish() opened the endpoint's circuit: nothing goes there until then.
    std::optional<clock::time_point> circuit_opened_until;
    // Set when finish() closed the endpoint's circuit (its trial request found it up).
    bool circuit_closed = false;
  };

  explicit scheduler(scheduler_options options) : options_(options) {}

  // A reload: new limits apply to what starts from now on (nothing in flight is stopped), and
  // every endpoint's breaker takes the new settings.
  void set_options(const scheduler_options& options) {
    options_ = options;
    for (auto& [key, state] : endpoints_) state.breaker.set_options(options.breaker);
  }

  // How many more deliveries may be claimed: every claimed one either runs or waits here.
  std::size_t capacity() const {
    const auto held = in_flight_ + queued_;
    return held >= options_.max_in_flight ? 0 : options_.max_in_flight - held;
  }
  std::size_t in_flight() const { return in_flight_; }
  std::size_t queued() const { return queued_; }

  void submit(const std::string& endpoint, T item, clock::time_point now, actions& out,
              webhook_limit webhook = {}) {
    auto& state = endpoint_state(endpoint);
    if (state.breaker.is_open(now)) {
      out.defer.push_back({std::move(item), state.breaker.retry_at()});
      return;
    }
    if (state.in_flight < options_.max_in_flight_per_endpoint && webhook_has_room(webhook)) {
      const auto admitted = state.breaker.try_acquire(now);
      if (admitted != circuit_breaker::admission::refused) {
        start(state, std::move(item), std::move(webhook),
              admitted == circuit_breaker::admission::trial, out);
        return;
      }
    }
    if (state.waiting.size() < options_.max_queued_per_endpoint) {
      state.waiting.push_back({std::move(item), std::move(webhook)});
      ++queued_;
      return;
    }
    // The endpoint is saturated: let the database hold the work a little instead of memory.
    out.defer.push_back({std::move(item), now + kSaturatedRetry});
  }

  // A started item ended; `trial` as start() said, `webhook` as submit() was given.
  // `signal` is what the attempt said about the endpoint (classify_attempt): only that feeds the
  // breaker, never whether the message failed.
  void finish(const std::string& endpoint, bool trial, endpoint_signal signal,
              clock::time_point now, actions& out, const webhook_limit& webhook = {}) {
    auto& state = endpoint_state(endpoint);
    --state.in_flight;
    --in_flight_;
    if (webhook.max_in_flight > 0) {
      const auto found = webhook_in_flight_.find(webhook.webhook_id);
      if (found != webhook_in_flight_.end() && --found->second == 0) {
        webhook_in_flight_.erase(found);
      }
    }
    const bool was_open = state.breaker.is_open(now);
    const bool was_tripped = state.breaker.tripped();
    state.breaker.record(signal, trial, now);
    if (was_tripped && !state.breaker.tripped()) out.circuit_closed = true;
    if (state.breaker.is_open(now)) {
      if (!was_open) out.circuit_opened_until = state.breaker.retry_at();
      // Open: whatever waits for this endpoint goes back to the database until the cooldown ends.
      while (!state.waiting.empty()) {
        out.defer.push_back({std::move(state.waiting.front().item), state.breaker.retry_at()});
        state.waiting.pop_front();
        --queued_;
      }
    }
    // The oldest waiting item whose webhook has room goes next: one webhook at its own limit
    // does not hold back the others on its endpoint.
    while (state.in_flight < options_.max_in_flight_per_endpoint) {
      const auto next =
          std::find_if(state.waiting.begin(), state.waiting.end(),
                       [this](const waiting_item& w) { return webhook_has_room(w.webhook); });
      if (next == state.waiting.end()) break;
      const auto admitted = state.breaker.try_acquire(now);
      if (admitted == circuit_breaker::admission::refused) break;
      waiting_item taken = std::move(*next);
      state.waiting.erase(next);
      --queued_;
      start(state, std::move(taken.item), std::move(taken.webhook),
            admitted == circuit_breaker::admission::trial, out);
    }
    // Keep the map as small as the set of endpoints that are busy or have something to remember.
    if (idle_and_forgettable(state, now)) endpoints_.erase(endpoint);
    sweep(now);
  }

  // Everything still waiting, to hand back at shutdown.
  std::vector<T> drain_waiting() {
    std::vector<T> out;
    for (auto& [key, state] : endpoints_) {
      for (auto& waiting : state.waiting) out.push_back(std::move(waiting.item));
      state.waiting.clear();
    }
    queued_ = 0;
    return out;
  }

  bool breaker_open(const std::string& endpoint, clock::time_point now) const {
    const auto found = endpoints_.find(endpoint);
    return found != endpoints_.end() && found->second.breaker.is_open(now);
  }
  // Endpoints whose circuit is open now.
  std::size_t open_circuits(clock::time_point now) const {
    return static_cast<std::size_t>(
        std::count_if(endpoints_.begin(), endpoints_.end(),
                      [now](const auto& entry) { return entry.second.breaker.is_open(now); }));
  }
  // Endpoints with state held in memory (busy, or with a circuit or recent failures to remember).
  std::size_t endpoints_tracked() const { return endpoints_.size(); }
  // Requests in flight for one webhook (counted only for webhooks with a limit of their own).
  std::size_t webhook_in_flight(const std::string& webhook_id) const {
    const auto found = webhook_in_flight_.find(webhook_id);
    return found == webhook_in_flight_.end() ? 0 : found->second;
  }

 private:
  static constexpr auto kSaturatedRetry = std::chrono::seconds(1);

  struct waiting_item {
    T item;
    webhook_limit webhook;
  };
  struct endpoint_slot {
    explicit endpoint_slot(const circuit_breaker_options& options) : breaker(options) {}
    std::size_t in_flight = 0;
    std::deque<waiting_item> waiting;
    circuit_breaker breaker;
  };

  static bool idle_and_forgettable(const endpoint_slot& state, clock::time_point now) {
    return state.in_flight == 0 && state.waiting.empty() && state.breaker.forgettable(now);
  }

  // An endpoint whose last attempt failed keeps its entry until its window has passed, and no
  // later finish() for it may come: once per window, drop every entry that has become idle and
  // forgettable, so the map is bounded by the endpoints active in the last few windows.
  void sweep(clock::time_point now) {
    if (now < next_sweep_) return;
    next_sweep_ = now + options_.breaker.window;
    std::erase_if(endpoints_,
                  [now](const auto& entry) { return idle_and_forgettable(entry.second, now); });
  }

  endpoint_slot& endpoint_state(const std::string& key) {
    return endpoints_.try_emplace(key, options_.breaker).first->second;
  }

  bool webhook_has_room(const webhook_limit& webhook) const {
    return webhook.max_in_flight == 0 ||
           webhook_in_flight(webhook.webhook_id) < webhook.max_in_flight;
  }

  void start(endpoint_slot& state, T item, webhook_limit webhook, bool trial, actions& out) {
    ++state.in_flight;
    ++in_flight_;
    // Only webhooks with a limit of their own are counted, so the map holds just those busy now.
    if (webhook.max_in_flight > 0) ++webhook_in_flight_[webhook.webhook_id];
    out.start.push_back({std::move(item), trial});
  }

  scheduler_options options_;
  std::unordered_map<std::string, endpoint_slot> endpoints_;
  std::unordered_map<std::string, std::size_t> webhook_in_flight_;
  std::size_t in_flight_ = 0;
  std::size_t queued_ = 0;
  clock::time_point next_sweep_{};
};

}  // namespace outboxd
