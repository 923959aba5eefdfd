#include "outboxd/json_text.hpp"

#include <gtest/gtest.h>

namespace outboxd {
namespace {

std::string json(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

TEST(json_text, escapes_what_json_requires_and_keeps_utf8) {
  EXPECT_EQ(json("plain"), "\"plain\"");
  EXPECT_EQ(json("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json("line\nnext\r\ttab"), R"("line\nnext\r\ttab")");
  EXPECT_EQ(json(std::string_view("\x01\x1f\x7f", 3)), R"("\u0001\u001f\u007f")");
  EXPECT_EQ(json("caf\xC3\xA9 \xF0\x9F\x8E\x89"), "\"caf\xC3\xA9 \xF0\x9F\x8E\x89\"");
}

TEST(json_text, invalid_utf8_and_nul_become_the_replacement_character) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(json(std::string_view("a\0b", 3)), "\"a" + fffd + "b\"");
  EXPECT_EQ(json("\xC3"), "\"" + fffd + "\"");                        // truncated sequence
  EXPECT_EQ(json("\xC0\xAF"), "\"" + fffd + fffd + "\"");             // overlong
  EXPECT_EQ(json("\xED\xA0\x80"), "\"" + fffd + fffd + fffd + "\"");  // surrogate
  EXPECT_EQ(to_storable_text(std::string_view("ok\0\xFF", 4)), "ok" + fffd + fffd);
  EXPECT_EQ(to_storable_text("caf\xC3\xA9"), "caf\xC3\xA9");
}

}  // namespace
}  // namespace outboxd
