#include "support/sanitizer_report.hpp"

#include <gtest/gtest.h>

#include <array>

namespace outboxd::test {

namespace {

// The first line of each sanitizer's report.
constexpr std::array<std::string_view, 5> kMarkers = {
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
    ": runtime error: ",  // UndefinedBehaviorSanitizer: file:line:column: runtime error: ...
    "SUMMARY: UndefinedBehaviorSanitizer",
};

}  // namespace

bool holds_sanitizer_report(std::string_view output) {
  for (const auto marker : kMarkers) {
    if (output.find(marker) != std::string_view::npos) return true;
  }
  return false;
}

void expect_no_sanitizer_report(std::string_view output, const std::string& what) {
  if (holds_sanitizer_report(output)) {
    ADD_FAILURE() << what << " reported a sanitizer error:\n" << output;
  }
}

}  // namespace outboxd::test
