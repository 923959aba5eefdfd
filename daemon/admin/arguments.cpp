#include "outboxd/admin/arguments.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdint>

#include "outboxd/config.hpp"

namespace outboxd::admin {

std::string require_uuid(std::string_view text, std::string_view what) {
  bool ok = text.size() == 36;
  std::string out;
  for (std::size_t i = 0; ok && i < text.size(); ++i) {
    const char c = text[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      ok = c == '-';
    } else {
      ok = std::isxdigit(static_cast<unsigned char>(c)) != 0;
    }
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (!ok) {
    throw config_error(fmt::format(
        "{} must be a UUID like 0b6f6c1e-3c1a-4d8e-9f00-5a4b3c2d1e0f, not '{}'", what, text));
  }
  return out;
}

std::string require_id(std::string_view text, std::string_view what) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < 1) {
    throw config_error(fmt::format("{} must be a whole number from 1, not '{}'", what, text));
  }
  return std::to_string(value);
}

}  // namespace outboxd::admin
