#include "outboxd/circuit_breaker.hpp"

namespace outboxd {

circuit_breaker::circuit_breaker(circuit_breaker_options options) : options_(options) {}

bool circuit_breaker::is_open(clock::time_point now) const { return open_ && now < open_until_; }

circuit_breaker::admission circuit_breaker::try_acquire(clock::time_point now) {
  if (!open_) return admission::normal;
  if (now < open_until_ || trial_in_flight_) return admission::refused;
  trial_in_flight_ = true;  // half-open: this one request tests the endpoint
  return admission::trial;
}

void circuit_breaker::record(bool success, bool trial, clock::time_point now) {
  if (open_ && !trial) return;
  if (trial) trial_in_flight_ = false;
  if (success) {
    failures_ = 0;
    open_ = false;
    return;
  }
  ++failures_;
  if (open_ || failures_ >= options_.failure_threshold) {
    open_ = true;
    open_until_ = now + options_.cooldown;
  }
}

}  // namespace outboxd
