// The outage log: one warning when PostgreSQL goes away, then at most one line per step of a
// doubling interval whatever the number of sessions retrying, then one "reachable again".
#include "outboxd/pg/outage_log.hpp"

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ostream_sink.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct scene {
  std::ostringstream out;
  steady_clock::time_point now = steady_clock::time_point{} + 1000h;
  steady_clock::time_point start = now;
  pg::outage_log outage;

  explicit scene(milliseconds first = 50ms, milliseconds max = 60s)
      : outage({.first_interval = first,
                .max_interval = max,
                .now = [this] { return now; },
                .logger = make_logger()}) {}

  std::shared_ptr<spdlog::logger> make_logger() {
    auto logger = std::make_shared<spdlog::logger>(
        "outage test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
    logger->set_pattern("%l %v");
    logger->set_level(spdlog::level::trace);
    return logger;
  }

  std::vector<std::string> lines() const {
    std::vector<std::string> all;
    std::istringstream in(out.str());
    for (std::string line; std::getline(in, line);) all.push_back(line);
    return all;
  }
};

const std::vector<std::string> kComponents{"outboxd listener", "outboxd dispatcher",
                                           "outboxd delivery", "outboxd delivery"};

TEST(outage_log, four_sessions_retrying_every_10ms_for_3s_give_one_line_per_doubling_step) {
  scene s(50ms);
  std::vector<milliseconds> line_times;
  int attempts = 0;
  // Each tick, every session fails once: 4 × 300 = 1200 failed attempts.
  for (int tick = 0; tick < 300; ++tick) {
    for (const auto& component : kComponents) {
      ++attempts;
      if (s.outage.failed(component, "connection refused")) {
        line_times.push_back(std::chrono::duration_cast<milliseconds>(s.now - s.start));
      }
    }
    s.now += 10ms;
  }
  // Lines at 0 ms, then 50, 150, 350, 750, 1550 ms (gaps 50, 100, 200, 400, 800); 3150 ms is
  // past the end.
  const std::vector<milliseconds> expected{0ms, 50ms, 150ms, 350ms, 750ms, 1550ms};
  EXPECT_EQ(line_times, expected);
  EXPECT_EQ(s.outage.failures(), static_cast<std::uint64_t>(attempts));
  const auto lines = s.lines();
  ASSERT_EQ(lines.size(), 6u) << s.out.str();
  EXPECT_EQ(lines[0],
            "warning PostgreSQL unreachable (outboxd listener): connection refused; retrying");
  // At 50 ms: the 3 other sessions at 0 ms, 4 sessions at 10..40 ms, and this one.
  EXPECT_NE(lines[1].find("; failed attempts since the last report: 20, unreachable for "),
            std::string::npos)
      << lines[1];
  for (const auto& line : lines) {
    EXPECT_TRUE(line.starts_with("warning PostgreSQL unreachable (")) << line;
    EXPECT_TRUE(line.ends_with("; retrying")) << line;
  }
}

TEST(outage_log, the_interval_stops_doubling_at_its_maximum) {
  scene s(100ms, 400ms);
  std::vector<milliseconds> gaps;
  auto last = s.now;
  bool first = true;
  for (int tick = 0; tick < 100; ++tick) {  // 10 s, one failure every 100 ms
    if (s.outage.failed("outboxd dispatcher", "timeout")) {
      if (!first) gaps.push_back(std::chrono::duration_cast<milliseconds>(s.now - last));
      first = false;
      last = s.now;
    }
    s.now += 100ms;
  }
  ASSERT_GE(gaps.size(), 5u);
  EXPECT_EQ(gaps[0], 100ms);
  EXPECT_EQ(gaps[1], 200ms);
  for (std::size_t i = 2; i < gaps.size(); ++i) EXPECT_EQ(gaps[i], 400ms) << i;
  // 0, 100, 300, 700, then every 400 ms up to 9900: 4 + 23.
  EXPECT_EQ(gaps.size() + 1, 27u);
}

TEST(outage_log, recovery_is_told_once_and_the_next_outage_starts_afresh) {
  scene s(50ms);
  EXPECT_FALSE(s.outage.recovered()) << "no outage, nothing to recover from";
  EXPECT_TRUE(s.out.str().empty());

  for (int i = 0; i < 31; ++i) {
    s.outage.failed("outboxd listener", "refused");
    s.now += 100ms;
  }
  EXPECT_TRUE(s.outage.in_outage());
  EXPECT_TRUE(s.outage.recovered());
  EXPECT_FALSE(s.outage.recovered());
  EXPECT_FALSE(s.outage.in_outage());
  EXPECT_EQ(s.outage.failures(), 0u);
  auto lines = s.lines();
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(),
            "info PostgreSQL reachable again after 3.1 s (31 failed connect attempts)");
  EXPECT_EQ(std::count_if(lines.begin(), lines.end(),
                          [](const std::string& l) { return l.find("reachable again") != l.npos; }),
            1);

  // A new outage speaks at once, with the first interval again.
  const auto before = lines.size();
  EXPECT_TRUE(s.outage.failed("outboxd delivery", "refused"));
  s.now += 49ms;
  EXPECT_FALSE(s.outage.failed("outboxd delivery", "refused"));
  s.now += 1ms;
  EXPECT_TRUE(s.outage.failed("outboxd delivery", "refused"));
  lines = s.lines();
  ASSERT_EQ(lines.size(), before + 2);
  EXPECT_EQ(lines[before], "warning PostgreSQL unreachable (outboxd delivery): refused; retrying");
  EXPECT_NE(lines[before + 1].find("; failed attempts since the last report: 2,"),
            std::string::npos)
      << lines[before + 1];
}

}  // namespace
}  // namespace outboxd::test
