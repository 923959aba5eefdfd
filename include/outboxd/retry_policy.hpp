#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd {

struct retry_options {
  // Delay after the 1st, 2nd, ... failed attempt (Standard Webhooks' schedule).
  std::vector<std::chrono::milliseconds> delays{
      std::chrono::seconds(5), std::chrono::minutes(5), std::chrono::minutes(30),
      std::chrono::hours(2),   std::chrono::hours(5),   std::chrono::hours(10),
      std::chrono::hours(14),  std::chrono::hours(20),  std::chrono::hours(24)};
  int max_attempts =
      10;               // then the delivery is dead; past the schedule's end the last delay repeats
  double jitter = 0.2;  // each delay is scaled by a random factor in [1 - jitter, 1 + jitter]
};

// One webhook's own retry settings (outboxd.webhook_policies); what is unset is the daemon's.
struct retry_overrides {
  std::vector<std::chrono::milliseconds> delays;  // empty: the daemon's schedule
  std::optional<int> max_attempts;
};

// What happens to a delivery after one attempt.
struct retry_decision {
  enum class next { succeeded, retry, dead };
  next what = next::dead;
  std::chrono::milliseconds delay{0};  // for retry: from now until the next attempt
};

// The schedule of one daemon: 2xx succeeds; anything else is retried after the attempt's delay
// with jitter until max_attempts, then dead. 429 and 503 with a Retry-After wait at least that
// long, but never longer than the schedule's longest delay.
class retry_policy {
 public:
  explicit retry_policy(retry_options options);

  retry_decision decide(int attempt_number, int status_code,
                        std::optional<std::chrono::milliseconds> retry_after,
                        const retry_overrides& overrides = {}) const;

  // The delay after failed attempt n (1-based), before jitter.
  std::chrono::milliseconds scheduled_delay(int attempt_number,
                                            const retry_overrides& overrides = {}) const;
  std::chrono::milliseconds longest_delay(const retry_overrides& overrides = {}) const;
  const retry_options& options() const { return options_; }
  // A reload: later decisions use these (attempts already scheduled keep their time).
  void set_options(retry_options options) { options_ = std::move(options); }

 private:
  retry_options options_;
};

// Retry-After as delta-seconds ("120") or an HTTP date ("Wed, 21 Oct 2026 07:28:00 GMT"),
// measured from `now`; a date in the past is zero. nullopt when it is neither. `now` should be
// the receiver's own Date header when it sent one: a date and its reference then come from one
// clock, and neither this host's nor the database's clock matters.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

// An HTTP date (IMF-fixdate and the two obsolete forms RFC 9110 asks recipients to accept).
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value);

// "5s,5m,30m" → delays. Throws config_error naming --retry-schedule.
std::vector<std::chrono::milliseconds> parse_retry_schedule(std::string_view text);

}  // namespace outboxd
