#include "outboxd/json_text.hpp"

#include <array>
#include <cstdint>

namespace outboxd {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Length of the valid UTF-8 sequence starting at `at`, or 0 if it is not one (RFC 3629: no
// overlongs, no surrogates, nothing above U+10FFFF).
std::size_t utf8_sequence_length(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[at + i]); };
  const auto continuation = [&](std::size_t i) {
    return at + i < text.size() && (byte(i) & 0xC0) == 0x80;
  };
  const std::uint8_t lead = byte(0);
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return continuation(1) ? 2 : 0;
  if (lead >= 0xE0 && lead <= 0xEF) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (lead == 0xE0 && byte(1) < 0xA0) return 0;  // overlong
    if (lead == 0xED && byte(1) > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (lead == 0xF0 && byte(1) < 0x90) return 0;  // overlong
    if (lead == 0xF4 && byte(1) > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// Walks `text` calling on_valid(sequence) for each valid UTF-8 sequence and on_invalid() for each
// byte that starts none.
template <typename Valid, typename Invalid>
void for_each_sequence(std::string_view text, Valid on_valid, Invalid on_invalid) {
  for (std::size_t at = 0; at < text.size();) {
    const auto length = utf8_sequence_length(text, at);
    if (length == 0) {
      on_invalid();
      ++at;
    } else {
      on_valid(text.substr(at, length));
      at += length;
    }
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  static constexpr std::array<char, 16> kHex{'0', '1', '2', '3', '4', '5', '6', '7',
                                             '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  out.push_back('"');
  for_each_sequence(
      text,
      [&](std::string_view sequence) {
        const char c = sequence.front();
        if (sequence.size() > 1) {
          out.append(sequence);
        } else if (c == '"' || c == '\\') {
          out.push_back('\\');
          out.push_back(c);
        } else if (c == '\n') {
          out.append("\\n");
        } else if (c == '\r') {
          out.append("\\r");
        } else if (c == '\t') {
          out.append("\\t");
        } else if (c == '\0') {
          out.append(kReplacement);  // jsonb refuses \u0000, and no text column holds NUL
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          out.append("\\u00");
          out.push_back(kHex[static_cast<unsigned char>(c) >> 4]);
          out.push_back(kHex[static_cast<unsigned char>(c) & 0xF]);
        } else {
          out.push_back(c);
        }
      },
      [&] { out.append(kReplacement); });
  out.push_back('"');
}

std::string to_storable_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for_each_sequence(
      bytes,
      [&](std::string_view sequence) {
        if (sequence == std::string_view("\0", 1)) {
          out.append(kReplacement);
        } else {
          out.append(sequence);
        }
      },
      [&] { out.append(kReplacement); });
  return out;
}

}  // namespace outboxd
