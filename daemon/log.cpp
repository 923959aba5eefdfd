#include "outboxd/log.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <iterator>
#include <mutex>
#include <string_view>

#include "outboxd/json_text.hpp"

namespace outboxd {

namespace {

// %* : the line's ids (ids_flag).
constexpr const char* kTextPattern = "%Y-%m-%dT%H:%M:%S.%eZ %l %v%*";

// The daemon runs on one thread; a test's thread logs with its own ids, or none.
thread_local const log_ids* current_ids = nullptr;

void append_text_ids(spdlog::memory_buf_t& dest) {
  const auto* ids = current_ids;
  if (!ids) return;
  if (ids->delivery_id) {
    fmt::format_to(std::back_inserter(dest), " delivery_id={}", *ids->delivery_id);
  }
  if (!ids->webhook_id.empty()) {
    fmt::format_to(std::back_inserter(dest), " webhook_id={}", ids->webhook_id);
  }
  if (ids->event_id) fmt::format_to(std::back_inserter(dest), " event_id={}", *ids->event_id);
}

class ids_flag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    append_text_ids(dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<ids_flag>();
  }
};

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
    if (const auto* ids = current_ids) {
      if (ids->delivery_id) line_ += fmt::format(",\"delivery_id\":{}", *ids->delivery_id);
      if (!ids->webhook_id.empty()) {
        line_ += ",\"webhook_id\":";
        append_json_string(line_, ids->webhook_id);
      }
      if (ids->event_id) line_ += fmt::format(",\"event_id\":{}", *ids->event_id);
    }
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

// A component logger's one sink: hands each record, its logger name being the component, to the
// default logger's sinks of the moment, which format it. Its logger never goes stale when the
// default logger is set up, replaced or given another sink after the component logger was made.
class default_logger_sink final : public spdlog::sinks::sink {
 public:
  void log(const spdlog::details::log_msg& msg) override {
    auto* main = spdlog::default_logger_raw();
    if (!main || !main->should_log(msg.level)) return;
    for (const auto& target : main->sinks()) {
      if (target->should_log(msg.level)) target->log(msg);
    }
  }
  void flush() override {
    auto* main = spdlog::default_logger_raw();
    if (!main) return;
    for (const auto& target : main->sinks()) target->flush();
  }
  // The format is the default logger's sinks' own.
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}
};

}  // namespace

log_context::log_context(const log_ids& ids) : previous_(current_ids) { current_ids = &ids; }
log_context::~log_context() { current_ids = previous_; }
const log_ids* log_context::current() { return current_ids; }

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<json_formatter>();
}

std::unique_ptr<spdlog::formatter> make_text_formatter() {
  auto made = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  made->add_flag<ids_flag>('*').set_pattern(kTextPattern);
  return made;
}

void setup_logging(const std::string& level, const std::string& format) {
  auto main = spdlog::stderr_logger_mt("outboxd");
  main->set_formatter(format == "json" ? make_json_formatter() : make_text_formatter());
  main->flush_on(spdlog::level::info);
  spdlog::set_default_logger(main);
  // The component loggers made before this too.
  spdlog::set_level(spdlog::level::from_str(level));
}

// Every registered logger: the default one and every component's (logger() registers them).
void set_log_level(const std::string& level) { spdlog::set_level(spdlog::level::from_str(level)); }

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  // Two first uses of one name at once must not both register it (register_logger throws).
  static std::mutex making;
  const std::lock_guard lock(making);
  if (auto found = spdlog::get(component)) return found;
  auto made = std::make_shared<spdlog::logger>(component, std::make_shared<default_logger_sink>());
  made->set_level(spdlog::default_logger_raw()->level());
  made->flush_on(spdlog::level::info);
  spdlog::register_logger(made);
  return made;
}

}  // namespace outboxd
