#include "outboxd/database_clock.hpp"

#include <spdlog/spdlog.h>

#include <cmath>

#include "outboxd/log.hpp"

namespace outboxd {

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("database_clock");
  return *component;
}

}  // namespace

void database_clock::observe(wall::time_point sent, wall::time_point database_time,
                             wall::time_point received) {
  const auto midpoint = sent + (received - sent) / 2;
  offset_ = database_time - midpoint;
  measured_ = true;

  const auto seconds = std::chrono::duration<double>(offset_).count();
  const bool over = std::abs(seconds) > std::chrono::duration<double>(kWarnAbove).count();
  const auto now = std::chrono::steady_clock::now();
  if (over && (!warned_ || !last_warning_ || now - *last_warning_ >= kRewarnEvery)) {
    log().warn(
        "this host's clock is {:.3f} s {} PostgreSQL's; outboxd schedules by the database's clock "
        "and signs with it, but fix the host's time (NTP)",
        std::abs(seconds), seconds > 0 ? "behind" : "ahead of");
    warned_ = true;
    last_warning_ = now;
  } else if (!over && warned_) {
    log().info("this host's clock is within {:.3f} s of PostgreSQL's again", std::abs(seconds));
    warned_ = false;
    last_warning_.reset();
  }
}

}  // namespace outboxd
