#pragma once

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace outboxd {

// Logs go to stderr, one line per record, for the container runtime to collect.
// Rule for every call site: never log a DSN, a secret, a header value or event data (it can hold
// personal data).
//
// format "text": `2026-12-02T00:09:26.810Z info message`.
// format "json": one object per line, {"time":"2026-12-02T00:09:26.810Z","level":"info",
// "component":"dispatcher","message":"..."}: time in RFC 3339 UTC, component the logger's name
// ("outboxd" for the default logger), the message escaped so that every line is valid JSON.
// A line logged with log_ids also has "delivery_id", "webhook_id" and "event_id" (those set);
// in text they follow the message: `... message delivery_id=12 webhook_id=8f0c...`.
void setup_logging(const std::string& level, const std::string& format = "text");
// A reload: every logger's level.
void set_log_level(const std::string& level);

// A component's logger ("dispatcher", "delivery_store"), its name what JSON lines carry as
// "component". It writes to whatever the default logger's sinks are when it logs, in their
// format, so it may be made before setup_logging (or in a test that never calls it, or that
// swaps the default logger) and still lands where the default logger does. Its level is kept by
// setup_logging and set_log_level, like every registered logger's.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// The ids a line is about, as their own fields. Ids only: never event data.
struct log_ids {
  std::optional<std::int64_t> delivery_id;
  std::string_view webhook_id;  // empty: not set
  std::optional<std::int64_t> event_id;
};

// The ids of the lines this thread logs while it lives. Scope it around log calls only, never
// across a co_await: another coroutine on the thread would log with these ids.
class log_context {
 public:
  explicit log_context(const log_ids& ids);
  ~log_context();
  log_context(const log_context&) = delete;
  log_context& operator=(const log_context&) = delete;

  // The innermost live context's ids on this thread, or null.
  static const log_ids* current();

 private:
  const log_ids* previous_;
};

// One line with ids: log_with(log(), {.delivery_id = d.id, .webhook_id = d.webhook_id},
// spdlog::level::warn, "webhook {}: ...", ...).
template <typename... Args>
void log_with(spdlog::logger& target, const log_ids& ids, spdlog::level::level_enum level,
              spdlog::format_string_t<Args...> format, Args&&... args) {
  const log_context context(ids);
  target.log(level, format, std::forward<Args>(args)...);
}

// The JSON-lines and text formatters (for setup_logging and tests).
std::unique_ptr<spdlog::formatter> make_json_formatter();
std::unique_ptr<spdlog::formatter> make_text_formatter();

}  // namespace outboxd
