#include "outboxd/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <string_view>

#include "outboxd/json_text.hpp"

namespace outboxd {

namespace {

constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %l %v";

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    const auto since_epoch = msg.time.time_since_epoch();
    const auto seconds_part = duration_cast<seconds>(since_epoch);
    const auto millis = duration_cast<milliseconds>(since_epoch - seconds_part).count();
    const std::time_t whole = seconds_part.count();
    line_.clear();
    line_ += fmt::format(
        "{{\"time\":\"{:%Y-%m-%dT%H:%M:%S}.{:03}Z\",\"level\":", fmt::gmtime(whole), millis);
    const auto level = spdlog::level::to_string_view(msg.level);
    append_json_string(line_, std::string_view(level.data(), level.size()));
    line_ += ",\"component\":";
    append_json_string(line_, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    line_ += ",\"message\":";
    append_json_string(line_, std::string_view(msg.payload.data(), msg.payload.size()));
    line_ += "}\n";
    dest.append(line_.data(), line_.data() + line_.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }

 private:
  std::string line_;
};

bool json_logs = false;

void apply_format(spdlog::logger& target) {
  if (json_logs) {
    target.set_formatter(make_json_formatter());
  } else {
    target.set_pattern(kTextPattern, spdlog::pattern_time_type::utc);
  }
}

}  // namespace

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<json_formatter>();
}

void setup_logging(const std::string& level, const std::string& format) {
  json_logs = format == "json";
  auto main = spdlog::stderr_logger_mt("outboxd");
  apply_format(*main);
  main->set_level(spdlog::level::from_str(level));
  main->flush_on(spdlog::level::info);
  spdlog::set_default_logger(main);
}

void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  if (auto found = spdlog::get(component)) return found;
  const auto& main = spdlog::default_logger();
  auto made =
      std::make_shared<spdlog::logger>(component, main->sinks().begin(), main->sinks().end());
  apply_format(*made);
  made->set_level(main->level());
  made->flush_on(spdlog::level::info);
  spdlog::register_logger(made);
  return made;
}

}  // namespace outboxd
