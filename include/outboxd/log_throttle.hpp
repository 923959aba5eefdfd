#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <string>
#include <string_view>

namespace outboxd {

struct log_throttle_options {
  // At most one line per key in this interval.
  std::chrono::milliseconds interval{60'000};
  // Keys remembered at once. A new key first makes the table forget keys whose interval is over
  // and that held nothing back (oldest first); if it is still full, the key with the oldest line
  // goes, with its suppressed count (it may then speak early).
  std::size_t max_keys = 4096;
};

// Per-key rate limiting of operator-facing log lines (e.g. one warning per webhook per minute),
// with a count of the lines held back, for the next line to mention. Memory is bounded by
// max_keys. Single-threaded; time is passed in, so tests need no clock.
class log_throttle {
 public:
  using clock = std::chrono::steady_clock;

  struct verdict {
    bool allowed = false;
    // When allowed: lines suppressed for this key since its previous allowed line.
    std::uint64_t suppressed = 0;
    explicit operator bool() const { return allowed; }
  };

  explicit log_throttle(log_throttle_options options = {});

  // Whether a line for `key` may be written now; when it may, the window restarts at `now`.
  verdict allow(std::string_view key, clock::time_point now);

  std::size_t size() const { return entries_.size(); }
  // Suppressed lines forgotten because their key was evicted before it could speak again.
  std::uint64_t suppressed_evicted() const { return suppressed_evicted_; }

 private:
  struct entry {
    clock::time_point allowed_at;
    std::uint64_t suppressed = 0;
    std::list<std::string>::iterator age;  // position in by_age_
  };

  void evict_oldest();

  log_throttle_options options_;
  std::map<std::string, entry, std::less<>> entries_;
  // Keys by the time of their last allowed line, oldest first.
  std::list<std::string> by_age_;
  std::uint64_t suppressed_evicted_ = 0;
};

}  // namespace outboxd
