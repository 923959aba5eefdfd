#include "outboxd/circuit_breaker.hpp"

#include <algorithm>
#include <array>

namespace outboxd {

endpoint_signal classify_attempt(int status, std::string_view error_code) {
  if (status != 0) {
    // A gateway or the server itself says it cannot serve anything right now.
    if (status == 502 || status == 503 || status == 504) return endpoint_signal::down;
    return endpoint_signal::healthy;
  }
  // The HTTP client's transport error codes; everything else never left the daemon.
  static constexpr std::array<std::string_view, 8> kTransport{
      "connect_refused", "timeout", "tls", "dns", "dns_timeout", "reset", "io", "protocol"};
  if (std::find(kTransport.begin(), kTransport.end(), error_code) != kTransport.end()) {
    return endpoint_signal::down;
  }
  // The specific TLS failures (tls_certificate_expired, tls_untrusted, ...) count as "tls".
  if (error_code.starts_with("tls_")) return endpoint_signal::down;
  return endpoint_signal::none;
}

circuit_breaker::circuit_breaker(circuit_breaker_options options)
    : options_(options),
      bucket_width_(std::max<clock::duration>(
          std::chrono::duration_cast<clock::duration>(options.window) / kBuckets,
          clock::duration(1))) {}

void circuit_breaker::set_options(const circuit_breaker_options& options) {
  const bool new_window = options.window != options_.window;
  options_ = options;
  if (!new_window) return;
  bucket_width_ = std::max<clock::duration>(
      std::chrono::duration_cast<clock::duration>(options.window) / kBuckets, clock::duration(1));
  buckets_ = {};
}

bool circuit_breaker::is_open(clock::time_point now) const { return open_ && now < open_until_; }

circuit_breaker::admission circuit_breaker::try_acquire(clock::time_point now) {
  if (!open_) return admission::normal;
  if (now < open_until_ || trial_in_flight_) return admission::refused;
  trial_in_flight_ = true;  // half-open: this one request tests the endpoint
  return admission::trial;
}

void circuit_breaker::record(endpoint_signal signal, bool trial, clock::time_point now) {
  if (open_) {
    if (!trial) return;  // stale news from before the circuit opened
    trial_in_flight_ = false;
    switch (signal) {
      case endpoint_signal::healthy:
        open_ = false;
        buckets_.fill({});
        break;
      case endpoint_signal::down:
        open(now);
        break;
      case endpoint_signal::none:
        break;  // the endpoint was not asked: the next request is the trial
    }
    return;
  }
  if (signal == endpoint_signal::none) return;
  count(signal, now);
  if (signal != endpoint_signal::down) return;
  const auto seen = in_window(now);
  if (seen.down >= options_.min_failures &&
      static_cast<double>(seen.down) >=
          options_.failure_ratio * static_cast<double>(seen.healthy + seen.down)) {
    open(now);
  }
}

int circuit_breaker::recent_failures(clock::time_point now) const {
  return open_ ? 0 : in_window(now).down;
}

circuit_breaker::tally circuit_breaker::in_window(clock::time_point now) const {
  tally out;
  const auto current = bucket_index(now);
  for (const auto& b : buckets_) {
    if (b.index > current - static_cast<std::int64_t>(kBuckets) && b.index <= current) {
      out.healthy += b.healthy;
      out.down += b.down;
    }
  }
  return out;
}

bool circuit_breaker::forgettable(clock::time_point now) const {
  if (!open_) return recent_failures(now) == 0;
  return !trial_in_flight_ && now >= open_until_ + options_.window;
}

std::int64_t circuit_breaker::bucket_index(clock::time_point now) const {
  return static_cast<std::int64_t>(now.time_since_epoch() / bucket_width_);
}

void circuit_breaker::count(endpoint_signal signal, clock::time_point now) {
  const auto index = bucket_index(now);
  auto& b = buckets_[static_cast<std::size_t>(index) % kBuckets];
  if (b.index != index) b = {.index = index};
  if (signal == endpoint_signal::down) {
    ++b.down;
  } else {
    ++b.healthy;
  }
}

void circuit_breaker::open(clock::time_point now) {
  open_ = true;
  open_until_ = now + options_.cooldown;
  buckets_.fill({});  // what led here is spent; a closed circuit starts counting afresh
}

}  // namespace outboxd
