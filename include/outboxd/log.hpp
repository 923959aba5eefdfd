#pragma once

#include <spdlog/formatter.h>
#include <spdlog/logger.h>

#include <memory>
#include <string>

namespace outboxd {

// Logs go to stderr, one line per record, for the container runtime to collect.
// Rule for every call site: never log a DSN, a secret, a header value or event data (it can hold
// personal data).
//
// format "text": `2026-12-02T00:09:26.810Z info message`.
// format "json": one object per line, {"time":"2026-12-02T00:09:26.810Z","level":"info",
// "component":"dispatcher","message":"..."}: time in RFC 3339 UTC, component the logger's name
// ("outboxd" for the default logger), the message escaped so that every line is valid JSON.
void setup_logging(const std::string& level, const std::string& format = "text");
// A reload: every logger's level.
void set_log_level(const std::string& level);

// A component's logger ("dispatcher", "delivery"): the default logger's sink, level and format
// under the component's name, which JSON lines carry as "component".
std::shared_ptr<spdlog::logger> logger(const std::string& component);

// The JSON-lines formatter (for setup_logging and tests).
std::unique_ptr<spdlog::formatter> make_json_formatter();

}  // namespace outboxd
