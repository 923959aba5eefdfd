#pragma once

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

// Decides when a claimed delivery may go: global and per-endpoint limits on requests in flight,
// a bounded wait queue per endpoint, and a circuit breaker per endpoint. Pure bookkeeping, no I/O:
// it answers with what to start and what to hand back to the database for later (a deferral
// spends no attempt). Single-threaded. T is the caller's work item.
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

  void submit(const std::string& endpoint, T item, clock::time_point now, actions& out) {
    auto& state = endpoint_state(endpoint);
    if (state.breaker.is_open(now)) {
      out.defer.push_back({std::move(item), state.breaker.retry_at()});
      return;
    }
    if (state.in_flight < options_.max_in_flight_per_endpoint) {
      const auto admitted = state.breaker.try_acquire(now);
      if (admitted != circuit_breaker::admission::refused) {
        start(state, std::move(item), admitted == circuit_breaker::admission::trial, out);
        return;
      }
    }
    if (state.waiting.size() < options_.max_queued_per_endpoint) {
      state.waiting.push_back(std::move(item));
      ++queued_;
      return;
    }
    // The endpoint is saturated: let the database hold the work a little instead of memory.
    out.defer.push_back({std::move(item), now + kSaturatedRetry});
  }

  // A started item ended; `trial` as start() said. `signal` is what the attempt said about the
  // endpoint (classify_attempt): only that feeds the breaker, never whether the message failed.
  void finish(const std::string& endpoint, bool trial, endpoint_signal signal,
              clock::time_point now, actions& out) {
    auto& state = endpoint_state(endpoint);
    --state.in_flight;
    --in_flight_;
    const bool was_open = state.breaker.is_open(now);
    state.breaker.record(signal, trial, now);
    if (state.breaker.is_open(now)) {
      if (!was_open) out.circuit_opened_until = state.breaker.retry_at();
      // Open: whatever waits for this endpoint goes back to the database until the cooldown ends.
      while (!state.waiting.empty()) {
        out.defer.push_back({std::move(state.waiting.front()), state.breaker.retry_at()});
        state.waiting.pop_front();
        --queued_;
      }
    }
    while (!state.waiting.empty() && state.in_flight < options_.max_in_flight_per_endpoint) {
      const auto admitted = state.breaker.try_acquire(now);
      if (admitted == circuit_breaker::admission::refused) break;
      T next = std::move(state.waiting.front());
      state.waiting.pop_front();
      --queued_;
      start(state, std::move(next), admitted == circuit_breaker::admission::trial, out);
    }
    // Keep the map as small as the set of endpoints that are busy or have something to remember.
    if (idle_and_forgettable(state, now)) endpoints_.erase(endpoint);
    sweep(now);
  }

  // Everything still waiting, to hand back at shutdown.
  std::vector<T> drain_waiting() {
    std::vector<T> out;
    for (auto& [key, state] : endpoints_) {
      for (auto& item : state.waiting) out.push_back(std::move(item));
      state.waiting.clear();
    }
    queued_ = 0;
    return out;
  }

  bool breaker_open(const std::string& endpoint, clock::time_point now) const {
    const auto found = endpoints_.find(endpoint);
    return found != endpoints_.end() && found->second.breaker.is_open(now);
  }
  // Endpoints with state held in memory (busy, or with a circuit or recent failures to remember).
  std::size_t endpoints_tracked() const { return endpoints_.size(); }

 private:
  static constexpr auto kSaturatedRetry = std::chrono::seconds(1);

  struct endpoint_slot {
    explicit endpoint_slot(const circuit_breaker_options& options) : breaker(options) {}
    std::size_t in_flight = 0;
    std::deque<T> waiting;
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

  void start(endpoint_slot& state, T item, bool trial, actions& out) {
    ++state.in_flight;
    ++in_flight_;
    out.start.push_back({std::move(item), trial});
  }

  scheduler_options options_;
  std::unordered_map<std::string, endpoint_slot> endpoints_;
  std::size_t in_flight_ = 0;
  std::size_t queued_ = 0;
  clock::time_point next_sweep_{};
};

}  // namespace outboxd
