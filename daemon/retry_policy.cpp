#include "outboxd/retry_policy.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>
#include <random>

#include "outboxd/config.hpp"

namespace outboxd {
using std::chrono::milliseconds;

retry_policy::retry_policy(retry_options options) : options_(std::move(options)) {}

namespace {

// Retry-After is honoured up to a year (and then capped by the schedule's longest delay).
constexpr milliseconds kLongestRetryAfter = std::chrono::hours(24 * 365);

const std::vector<milliseconds>& delays_of(const retry_options& options,
                                           const retry_overrides& overrides) {
  return overrides.delays.empty() ? options.delays : overrides.delays;
}

}  // namespace

milliseconds retry_policy::scheduled_delay(int attempt_number,
                                           const retry_overrides& overrides) const {
  const auto& delays = delays_of(options_, overrides);
  if (delays.empty()) return milliseconds(0);
  const auto index = static_cast<std::size_t>(std::max(attempt_number, 1) - 1);
  return delays[std::min(index, delays.size() - 1)];
}

milliseconds retry_policy::longest_delay(const retry_overrides& overrides) const {
  const auto& delays = delays_of(options_, overrides);
  if (delays.empty()) return milliseconds(0);
  return *std::max_element(delays.begin(), delays.end());
}

retry_decision retry_policy::decide(int attempt_number, int status_code,
                                    std::optional<milliseconds> retry_after,
                                    const retry_overrides& overrides) const {
  if (status_code >= 200 && status_code <= 299) return {.what = retry_decision::next::succeeded};
  if (attempt_number >= overrides.max_attempts.value_or(options_.max_attempts)) {
    return {.what = retry_decision::next::dead};
  }

  // Jitter spreads the retries of a burst that failed together (an endpoint outage).
  thread_local std::minstd_rand random{std::random_device{}()};
  std::uniform_real_distribution<double> factor(1.0 - options_.jitter, 1.0 + options_.jitter);
  auto delay = milliseconds(static_cast<milliseconds::rep>(
      static_cast<double>(scheduled_delay(attempt_number, overrides).count()) * factor(random)));
  // The receiver asked for room: give at least that much, within the schedule's cap.
  if (retry_after && (status_code == 429 || status_code == 503)) {
    delay = std::max(delay, std::min(*retry_after, longest_delay(overrides)));
  }
  return {.what = retry_decision::next::retry, .delay = delay};
}

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty()) return std::nullopt;

  long long seconds = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec == std::errc{} && end == value.data() + value.size()) {
    if (seconds < 0) return std::nullopt;
    // Clamp absurd values before converting, so the arithmetic cannot overflow.
    return std::chrono::seconds(std::min<long long>(
        seconds, std::chrono::duration_cast<std::chrono::seconds>(kLongestRetryAfter).count()));
  }

  const auto at = parse_http_date(value);
  if (!at) return std::nullopt;
  // In whole seconds: nanosecond time points centuries apart would overflow their difference.
  using std::chrono::duration_cast;
  const auto ahead = duration_cast<std::chrono::seconds>(at->time_since_epoch()) -
                     duration_cast<std::chrono::seconds>(now.time_since_epoch());
  return std::clamp<milliseconds>(ahead, milliseconds(0), kLongestRetryAfter);
}

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  const std::string text(value);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %d %H:%M:%S %Y"}) {
    std::tm parts{};
    const char* rest = ::strptime(text.c_str(), format, &parts);
    if (rest == nullptr || *rest != '\0') continue;
    // system_clock counts nanoseconds, about 292 years either side of 1970; converting a date
    // outside that (a receiver may send year 9999) would overflow. No such date means anything
    // to a retry.
    const std::time_t seconds = ::timegm(&parts);
    constexpr auto kRange =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::duration::max())
            .count();
    if (seconds > kRange || seconds < -kRange) return std::nullopt;
    return std::chrono::system_clock::from_time_t(seconds);
  }
  return std::nullopt;
}

std::vector<milliseconds> parse_retry_schedule(std::string_view text) {
  std::vector<milliseconds> delays;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    delays.push_back(parse_duration(item, "--retry-schedule"));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  if (delays.empty()) throw config_error("--retry-schedule", "needs at least one delay");
  return delays;
}

}  // namespace outboxd
