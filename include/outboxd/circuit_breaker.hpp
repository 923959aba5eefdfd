#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace outboxd {

// What one attempt says about the endpoint (the receiver server), as opposed to the message.
enum class endpoint_signal {
  none,     // the endpoint was never asked (refused address, bad webhook row, body too large)
  healthy,  // it answered: 2xx, 4xx, 500, ... (the message may have failed; the server is up)
  down,     // it could not be reached or talked to, or a gateway said it is unavailable
};

// down: the transport failed (connect_refused, timeout, tls, dns, reset, io, protocol) or the
// answer was 502, 503 or 504. healthy: any other HTTP status. none: no status and any other error
// code, all of which are decided before a request is sent (blocked_address, https_required,
// port_not_allowed, invalid_header, invalid_secret, invalid_url, payload_too_large, internal).
endpoint_signal classify_attempt(int status, std::string_view error_code);

struct circuit_breaker_options {
  // The circuit opens when, within `window`, at least min_failures attempts said `down` and
  // they are at least failure_ratio of the attempts that said anything.
  int min_failures = 5;
  double failure_ratio = 0.5;
  std::chrono::milliseconds window{30'000};
  std::chrono::milliseconds cooldown{30'000};  // how long it stays open before one trial
};

// One endpoint's breaker, fed only endpoint-level signals (classify_attempt), so a receiver that
// refuses some messages while it is up never trips it.
//
// Closed: everything goes; signals are counted over a sliding window held in a fixed ring of
// time buckets (bounded memory, resolution window / kBuckets). When the window's down signals
// reach both the minimum and the ratio it opens: nothing goes until the cool-down has passed.
// Then one trial request goes (half-open); its verdict decides: healthy closes the circuit with
// an empty window, down opens it for another cool-down, none lets another request be the trial.
class circuit_breaker {
 public:
  using clock = std::chrono::steady_clock;

  explicit circuit_breaker(circuit_breaker_options options);
  // A reload. An open circuit stays open until its cool-down ends; a new window starts counting
  // afresh (the old buckets measured other stretches of time).
  void set_options(const circuit_breaker_options& options);

  enum class admission { refused, normal, trial };
  // May a request start now? When half-open, the one that may is the trial.
  admission try_acquire(clock::time_point now);
  // An outcome; `trial` as try_acquire said. While the circuit is open (cool-down or half-open)
  // only the trial's counts: requests started before it opened report stale news.
  void record(endpoint_signal signal, bool trial, clock::time_point now);

  // Inside the cool-down. (Half-open, with the trial in flight, is not open: requests wait for
  // the trial's verdict instead of being sent back to the database.)
  bool is_open(clock::time_point now) const;
  clock::time_point retry_at() const { return open_until_; }
  // Open or half-open: tripped and not yet closed again by a trial.
  bool tripped() const { return open_; }
  // Down signals in the window (0 while open: the window restarts when the circuit closes).
  int recent_failures(clock::time_point now) const;
  // Nothing here is worth keeping: closed with no down signal in the window, or open but left
  // alone (no trial out) for a whole window after its cool-down. A fresh breaker is equivalent.
  bool forgettable(clock::time_point now) const;

  static constexpr std::size_t kBuckets = 10;

 private:
  struct bucket {
    std::int64_t index = -1;  // which bucket-wide stretch of time it counts; -1: never used
    int healthy = 0;
    int down = 0;
  };
  struct tally {
    int healthy = 0;
    int down = 0;
  };
  tally in_window(clock::time_point now) const;
  std::int64_t bucket_index(clock::time_point now) const;
  void count(endpoint_signal signal, clock::time_point now);
  void open(clock::time_point now);

  circuit_breaker_options options_;
  clock::duration bucket_width_;
  std::array<bucket, kBuckets> buckets_{};
  bool open_ = false;
  bool trial_in_flight_ = false;
  clock::time_point open_until_{};
};

}  // namespace outboxd
