// --log-format json: every line is one valid JSON object (parsed with simdjson) with time, level,
// component and message, whatever bytes the message holds; a component's logger names its lines
// and follows the default logger's sinks and the reloaded level; a line's ids are fields of their
// own in JSON and follow the message in text.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <memory>
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

// The default logger replaced, for a test, by one writing into a string in the given format.
class captured_default {
 public:
  explicit captured_default(std::unique_ptr<spdlog::formatter> format)
      : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    sink->set_formatter(std::move(format));
    auto main = std::make_shared<spdlog::logger>("log_test_main", sink);
    main->set_level(spdlog::level::info);
    spdlog::set_default_logger(main);
    set_log_level("info");
  }
  ~captured_default() {
    set_log_level("info");
    spdlog::set_default_logger(previous_);
  }
  captured_default(const captured_default&) = delete;
  captured_default& operator=(const captured_default&) = delete;

  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::istringstream in(text_.str());
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST(log_format, a_component_logger_names_its_lines_and_follows_the_default_logger_and_reloads) {
  // Made before the default logger is replaced, as a component's logger made before setup_logging
  // (or in an earlier test) is: it still writes where the default logger now does.
  const auto early = logger("log_test_early");
  const captured_default captured(make_json_formatter());
  const auto component = logger("log_test_component");
  EXPECT_EQ(logger("log_test_component"), component);  // one logger per name

  early->info("early line");
  component->info("component line");
  component->debug("below the level");
  set_log_level("debug");  // as a SIGHUP applies it
  component->debug("debug after reload");
  set_log_level("warn");
  component->info("info below warn");
  early->warn("warn kept");

  const auto text = captured.text();
  const auto lines = parse_lines(text);
  ASSERT_EQ(lines.size(), 4u) << text;
  EXPECT_EQ(lines[0].component, "log_test_early");
  EXPECT_EQ(lines[0].message, "early line");
  EXPECT_EQ(lines[1].component, "log_test_component");
  EXPECT_EQ(lines[1].message, "component line");
  EXPECT_EQ(lines[2].message, "debug after reload");
  EXPECT_EQ(lines[2].level, "debug");
  EXPECT_EQ(lines[3].message, "warn kept");
  EXPECT_EQ(lines[3].component, "log_test_early");
}

TEST(log_format, ids_are_json_fields_of_their_own_and_only_on_the_lines_logged_with_them) {
  const captured_default captured(make_json_formatter());
  auto& log = *logger("delivery_store");
  log_with(log, {.delivery_id = 12, .webhook_id = "8f0c2a4e-webhook", .event_id = 34},
           spdlog::level::warn, "webhook {}: delivery {} failing", "8f0c2a4e-webhook", 12);
  log.info("no ids here");
  const log_ids only_webhook{.webhook_id = "w\"2"};
  log_with(log, only_webhook, spdlog::level::info, "webhook disabled");
  EXPECT_EQ(log_context::current(), nullptr);  // nothing left behind

  const auto lines = captured.lines();
  ASSERT_EQ(lines.size(), 3u) << captured.text();
  simdjson::dom::parser parser;
  simdjson::dom::element line;

  ASSERT_EQ(parser.parse(lines[0]).get(line), simdjson::SUCCESS) << lines[0];
  std::int64_t number = 0;
  std::string_view text;
  ASSERT_EQ(line["delivery_id"].get_int64().get(number), simdjson::SUCCESS) << lines[0];
  EXPECT_EQ(number, 12);
  ASSERT_EQ(line["webhook_id"].get_string().get(text), simdjson::SUCCESS) << lines[0];
  EXPECT_EQ(text, "8f0c2a4e-webhook");
  ASSERT_EQ(line["event_id"].get_int64().get(number), simdjson::SUCCESS) << lines[0];
  EXPECT_EQ(number, 34);
  ASSERT_EQ(line["component"].get_string().get(text), simdjson::SUCCESS);
  EXPECT_EQ(text, "delivery_store");
  ASSERT_EQ(line["message"].get_string().get(text), simdjson::SUCCESS);
  EXPECT_EQ(text, "webhook 8f0c2a4e-webhook: delivery 12 failing");  // the message as it was

  ASSERT_EQ(parser.parse(lines[1]).get(line), simdjson::SUCCESS) << lines[1];
  for (const char* field : {"delivery_id", "webhook_id", "event_id"}) {
    EXPECT_EQ(line[field].error(), simdjson::NO_SUCH_FIELD) << field << " in " << lines[1];
  }

  ASSERT_EQ(parser.parse(lines[2]).get(line), simdjson::SUCCESS) << lines[2];
  ASSERT_EQ(line["webhook_id"].get_string().get(text), simdjson::SUCCESS) << lines[2];
  EXPECT_EQ(text, "w\"2");  // escaped like any string
  EXPECT_EQ(line["delivery_id"].error(), simdjson::NO_SUCH_FIELD) << lines[2];
  EXPECT_EQ(line["event_id"].error(), simdjson::NO_SUCH_FIELD) << lines[2];
}

TEST(log_format, text_lines_carry_the_ids_after_the_message) {
  const captured_default captured(make_text_formatter());
  auto& log = *logger("deliverer");
  log_with(log, {.delivery_id = 12, .webhook_id = "8f0c2a4e-webhook", .event_id = 34},
           spdlog::level::warn, "webhook {}: delivery {} failing", "8f0c2a4e-webhook", 12);
  log.info("no ids here");
  log_with(log, {.event_id = 7}, spdlog::level::warn, "outbox event {} set aside", 7);

  const auto lines = captured.lines();
  ASSERT_EQ(lines.size(), 3u) << captured.text();
  // 2026-12-02T00:09:26.810Z warning webhook ...: the text format as it was, the ids after it.
  EXPECT_EQ(lines[0].substr(23, 1), "Z") << lines[0];
  EXPECT_TRUE(
      lines[0].ends_with(" warning webhook 8f0c2a4e-webhook: delivery 12 failing delivery_id=12 "
                         "webhook_id=8f0c2a4e-webhook event_id=34"))
      << lines[0];
  EXPECT_TRUE(lines[1].ends_with(" info no ids here")) << lines[1];
  EXPECT_TRUE(lines[2].ends_with(" warning outbox event 7 set aside event_id=7")) << lines[2];
}

}  // namespace
}  // namespace outboxd
