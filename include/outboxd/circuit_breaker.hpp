#pragma once

#include <chrono>

namespace outboxd {

struct circuit_breaker_options {
  int failure_threshold = 5;                   // consecutive failures that open the circuit
  std::chrono::milliseconds cooldown{30'000};  // how long it stays open before one trial
};

// One endpoint's breaker. Closed: everything goes. After failure_threshold failures in a row it
// opens: nothing goes until the cooldown has passed. Then one trial request goes (half-open):
// success closes the circuit, failure opens it for another cooldown.
class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;

  explicit circuit_breaker(circuit_breaker_options options);

  enum class admission { refused, normal, trial };
  // May a request start now? When half-open, the one that may is the trial.
  admission try_acquire(clock::time_point now);
  // An outcome. While the circuit is open only the trial's counts: requests started before it
  // opened report stale news.
  void record(bool success, bool trial, clock::time_point now);
  // The trial never reached the endpoint: let another request be the trial.
  void release_trial() { trial_in_flight_ = false; }

  // Inside the cool-down. (Half-open, with the trial in flight, is not open: requests wait for
  // the trial's verdict instead of being sent back to the database.)
  bool is_open(clock::time_point now) const;
  clock::time_point retry_at() const { return open_until_; }
  int consecutive_failures() const { return failures_; }

 private:
  circuit_breaker_options options_;
  int failures_ = 0;
  bool open_ = false;
  bool trial_in_flight_ = false;
  clock::time_point open_until_{};
};

}  // namespace outboxd
