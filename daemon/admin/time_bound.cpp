#include "outboxd/admin/time_bound.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <ctime>

#include "outboxd/config.hpp"

namespace outboxd::admin {
using std::chrono::system_clock;

namespace {

// Reads exactly `digits` decimal digits at `pos`.
bool read_digits(std::string_view text, std::size_t& pos, std::size_t digits, int& value) {
  if (pos + digits > text.size()) return false;
  value = 0;
  for (std::size_t i = 0; i < digits; ++i) {
    const char c = text[pos + i];
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    value = value * 10 + (c - '0');
  }
  pos += digits;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, std::string_view any_of) {
  if (pos >= text.size() || any_of.find(text[pos]) == std::string_view::npos) return false;
  ++pos;
  return true;
}

}  // namespace

std::optional<system_clock::time_point> parse_rfc3339(std::string_view text) {
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!read_digits(text, pos, 4, year) || !expect(text, pos, "-") ||
      !read_digits(text, pos, 2, month) || !expect(text, pos, "-") ||
      !read_digits(text, pos, 2, day) || !expect(text, pos, "Tt ") ||
      !read_digits(text, pos, 2, hour) || !expect(text, pos, ":") ||
      !read_digits(text, pos, 2, minute) || !expect(text, pos, ":") ||
      !read_digits(text, pos, 2, second)) {
    return std::nullopt;
  }
  std::chrono::microseconds fraction{0};
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    const auto start = pos;
    long long scale = 100000;
    long long micros = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      micros += (text[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
    fraction = std::chrono::microseconds(micros);
  }
  int offset_minutes = 0;
  if (expect(text, pos, "Zz")) {
    offset_minutes = 0;
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const int sign = text[pos] == '-' ? -1 : 1;
    ++pos;
    int offset_hours = 0, offset_rest = 0;
    if (!read_digits(text, pos, 2, offset_hours) || !expect(text, pos, ":") ||
        !read_digits(text, pos, 2, offset_rest) || offset_hours > 23 || offset_rest > 59) {
      return std::nullopt;
    }
    offset_minutes = sign * (offset_hours * 60 + offset_rest);
  } else {
    return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  std::tm parts{};
  parts.tm_year = year - 1900;
  parts.tm_mon = month - 1;
  parts.tm_mday = day;
  parts.tm_hour = hour;
  parts.tm_min = minute;
  parts.tm_sec = second;
  const auto seconds = ::timegm(&parts);
  // timegm normalises 31 February into March: a date that moved did not exist.
  if (parts.tm_mday != day || parts.tm_mon != month - 1) return std::nullopt;
  return system_clock::from_time_t(seconds) - std::chrono::minutes(offset_minutes) + fraction;
}

time_bound parse_time_bound(std::string_view text, std::string_view setting) {
  time_bound out;
  if (const auto at = parse_rfc3339(text)) {
    out.timestamp = std::string(text);
    out.approximate = *at;
    return out;
  }
  // A bare number reads as milliseconds elsewhere; as "how long ago" it is surely a mistake.
  const bool has_unit = !text.empty() && !std::isdigit(static_cast<unsigned char>(text.back()));
  std::optional<std::chrono::milliseconds> ago;
  if (has_unit) {
    try {
      ago = parse_duration(text, setting);
    } catch (const config_error&) {
    }
  }
  if (!ago) {
    throw config_error(fmt::format(
        "{} must be an RFC 3339 timestamp like 2026-12-01T10:00:00Z or a duration before now "
        "like 2h, 30m or 90s, not '{}'",
        setting, text));
  }
  out.ago_ms = std::to_string(ago->count());
  out.approximate = system_clock::now() - *ago;
  return out;
}

void check_range(const std::optional<time_bound>& since, const std::optional<time_bound>& until) {
  if (since && until && since->approximate >= until->approximate) {
    throw config_error("--since must be earlier than --until");
  }
}

pg::param timestamp_param(const std::optional<time_bound>& bound) {
  if (!bound || bound->timestamp.empty()) return std::nullopt;
  return std::string_view(bound->timestamp);
}

pg::param ago_param(const std::optional<time_bound>& bound) {
  if (!bound || bound->ago_ms.empty()) return std::nullopt;
  return std::string_view(bound->ago_ms);
}

}  // namespace outboxd::admin
