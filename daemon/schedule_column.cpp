#include "outboxd/schedule_column.hpp"

#include <charconv>

namespace outboxd {

namespace {

// What `outboxd policy set --retry-schedule` (parse_duration) accepts: a century at most. The
// column is a bigint[], so a row written by hand may hold more, and a delay of, say, 10^18 ms
// would overflow the jitter's arithmetic and PostgreSQL's interval when the retry is scheduled,
// failing the whole batch of outcomes it is written with.
constexpr long long kLongestDelayMs = 36'500LL * 86'400'000;

}  // namespace

std::vector<std::chrono::milliseconds> parse_schedule_column(std::string_view text) {
  std::vector<std::chrono::milliseconds> delays;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    long long value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (ec != std::errc{} || end != item.data() + item.size() || value < 0 ||
        value > kLongestDelayMs) {
      return {};
    }
    delays.emplace_back(value);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return delays;
}

}  // namespace outboxd
