#include "outboxd/schedule_column.hpp"

#include <charconv>

namespace outboxd {

std::vector<std::chrono::milliseconds> parse_schedule_column(std::string_view text) {
  std::vector<std::chrono::milliseconds> delays;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    long long value = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (ec != std::errc{} || end != item.data() + item.size() || value < 0) return {};
    delays.emplace_back(value);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return delays;
}

}  // namespace outboxd
