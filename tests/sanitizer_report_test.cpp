#include "support/sanitizer_report.hpp"

#include <gtest/gtest.h>

namespace outboxd::test {
namespace {

TEST(sanitizer_report, recognises_each_sanitizers_report) {
  EXPECT_TRUE(holds_sanitizer_report(
      "==123==ERROR: AddressSanitizer: heap-use-after-free on address 0x602000000010"));
  EXPECT_TRUE(holds_sanitizer_report("==123==ERROR: LeakSanitizer: detected memory leaks"));
  EXPECT_TRUE(holds_sanitizer_report(
      "daemon/retry_policy.cpp:86:10: runtime error: signed integer overflow: ..."));
  EXPECT_TRUE(holds_sanitizer_report("WARNING: ThreadSanitizer: data race (pid=42)"));
}

TEST(sanitizer_report, ordinary_daemon_output_is_no_report) {
  EXPECT_FALSE(holds_sanitizer_report(""));
  EXPECT_FALSE(holds_sanitizer_report(
      "[info] outboxd 0.1.0 starting\n[error] deliverer: attempt failed: timeout\n"
      "outboxd: fatal: --poll-interval: must be between 10ms and 1h\n"));
}

}  // namespace
}  // namespace outboxd::test
