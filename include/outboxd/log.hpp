#pragma once

#include <string>

namespace outboxd {

// Logs go to stderr, one line per record, for the container runtime to collect.
// Rule for every call site: never log a DSN, a secret or event data (it can hold personal data).
void setup_logging(const std::string& level);
// A reload: every logger's level.
void set_log_level(const std::string& level);

}  // namespace outboxd
