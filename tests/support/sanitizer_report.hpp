#pragma once

#include <string>
#include <string_view>

namespace outboxd::test {

// Whether a child process's output holds a report of AddressSanitizer, LeakSanitizer,
// UndefinedBehaviorSanitizer or ThreadSanitizer. The sanitized builds make a reporting daemon exit
// with status 86, but a test that kills its daemon at the end, or expects it to fail, would not
// see that status; so every child's output is checked as well (daemon_process, run_binary).
bool holds_sanitizer_report(std::string_view output);

// Adds a test failure naming `what` and quoting the report when `output` holds one.
void expect_no_sanitizer_report(std::string_view output, const std::string& what);

}  // namespace outboxd::test
