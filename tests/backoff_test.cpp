#include "outboxd/backoff.hpp"

#include <gtest/gtest.h>

namespace outboxd {
namespace {
using std::chrono::milliseconds;

TEST(backoff, doubles_with_jitter_up_to_the_cap_and_resets) {
  backoff delays({.initial = milliseconds(100), .max = milliseconds(1000)});
  milliseconds ceiling(100);
  for (int i = 0; i < 10; ++i) {
    const auto d = delays.next();
    EXPECT_GE(d, ceiling / 2) << "attempt " << i;
    EXPECT_LE(d, ceiling) << "attempt " << i;
    ceiling = std::min(ceiling * 2, milliseconds(1000));
  }
  delays.reset();
  EXPECT_LE(delays.next(), milliseconds(100));
}

}  // namespace
}  // namespace outboxd
