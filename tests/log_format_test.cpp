// --log-format json: every line is one valid JSON object (parsed with simdjson) with time, level,
// component and message, whatever bytes the message holds.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <string>
#include <vector>

#include "outboxd/log.hpp"

namespace outboxd {
namespace {

struct json_line {
  std::string time;
  std::string level;
  std::string component;
  std::string message;
};

std::vector<json_line> parse_lines(const std::string& text) {
  std::vector<json_line> out;
  std::istringstream in(text);
  simdjson::dom::parser parser;
  for (std::string line; std::getline(in, line);) {
    simdjson::dom::element element;
    const auto error = parser.parse(line).get(element);
    EXPECT_EQ(error, simdjson::SUCCESS) << "not JSON: " << line;
    if (error) continue;
    json_line parsed;
    std::string_view field;
    for (auto [name, target] :
         {std::pair{"time", &parsed.time}, std::pair{"level", &parsed.level},
          std::pair{"component", &parsed.component}, std::pair{"message", &parsed.message}}) {
      EXPECT_EQ(element[name].get_string().get(field), simdjson::SUCCESS)
          << "no string " << name << " in " << line;
      *target = std::string(field);
    }
    out.push_back(parsed);
  }
  return out;
}

constexpr char kWithNul[] = "control \x01\x1f\x7f and NUL \0 end";

TEST(log_format, json_lines_are_valid_json_with_the_fields_and_escape_what_needs_it) {
  std::ostringstream sink_text;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(sink_text);
  spdlog::logger log("dispatcher", sink);
  log.set_formatter(make_json_formatter());
  log.set_level(spdlog::level::trace);

  const std::vector<std::string> messages{
      "plain",
      "a \"quoted\" word and a back\\slash",
      "two\nlines\r\nand a\ttab",
      std::string(kWithNul, sizeof kWithNul - 1),
      "invalid UTF-8 \xff\xfe and valid \xc3\xa9",
      "{\"looks\": \"like json\"}",
      "",
  };
  for (const auto& message : messages) log.info("{}", message);
  log.warn("webhook {} failing", 42);
  log.error("e");
  log.debug("d");

  const auto text = sink_text.str();
  const auto lines = parse_lines(text);
  ASSERT_EQ(lines.size(), messages.size() + 3) << text;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    EXPECT_EQ(lines[i].level, "info");
    EXPECT_EQ(lines[i].component, "dispatcher");
    // RFC 3339 UTC with milliseconds: 2026-12-02T00:09:26.810Z.
    EXPECT_EQ(lines[i].time.size(), 24u) << lines[i].time;
    EXPECT_EQ(lines[i].time[10], 'T');
    EXPECT_EQ(lines[i].time.back(), 'Z');
  }
  EXPECT_EQ(lines[0].message, "plain");
  EXPECT_EQ(lines[1].message, messages[1]);  // quotes and backslashes survive the round trip
  EXPECT_EQ(lines[2].message, messages[2]);  // newlines do not break the line
  EXPECT_EQ(lines[3].message.substr(0, 12), "control \x01\x1f\x7f ");
  EXPECT_EQ(lines[4].message.find("\xff"), std::string::npos);  // replaced, not passed through
  EXPECT_NE(lines[4].message.find("\xc3\xa9"), std::string::npos);
  EXPECT_EQ(lines[5].message, messages[5]);
  EXPECT_EQ(lines[6].message, "");
  EXPECT_EQ(lines[7].level, "warning");
  EXPECT_EQ(lines[7].message, "webhook 42 failing");
  EXPECT_EQ(lines[8].level, "error");
  EXPECT_EQ(lines[9].level, "debug");
  // One record, one line: the raw control characters never reach the output.
  EXPECT_EQ(text.find('\x01'), std::string::npos);
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

}  // namespace
}  // namespace outboxd
