#include "outboxd/pg/outage_log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "outboxd/log.hpp"

namespace outboxd::pg {
using std::chrono::milliseconds;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("pg");
  return *component;
}

}  // namespace

outage_log::outage_log(outage_log_options options) : options_(std::move(options)) {
  options_.first_interval = std::max(options_.first_interval, milliseconds(1));
  options_.max_interval = std::max(options_.max_interval, options_.first_interval);
}

std::chrono::steady_clock::time_point outage_log::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

bool outage_log::failed(std::string_view component, std::string_view message) {
  const auto at = now();
  ++failures_;
  auto& logger = options_.logger ? *options_.logger : log();
  if (!started_) {
    started_ = at;
    interval_ = options_.first_interval;
    next_line_at_ = at + interval_;
    unreported_ = 0;
    logger.warn("PostgreSQL unreachable ({}): {}; retrying", component, message);
    return true;
  }
  ++unreported_;
  if (at < next_line_at_) return false;
  const auto seconds = std::chrono::duration<double>(at - *started_).count();
  logger.warn(
      "PostgreSQL unreachable ({}): {}; failed attempts since the last report: {}, "
      "unreachable for {:.1f} s; retrying",
      component, message, unreported_, seconds);
  unreported_ = 0;
  interval_ = std::min(interval_ * 2, options_.max_interval);
  next_line_at_ = at + interval_;
  return true;
}

bool outage_log::recovered() {
  if (!started_) return false;
  const auto seconds = std::chrono::duration<double>(now() - *started_).count();
  auto& logger = options_.logger ? *options_.logger : log();
  logger.info("PostgreSQL reachable again after {:.1f} s ({} failed connect attempts)", seconds,
              failures_);
  started_.reset();
  failures_ = 0;
  unreported_ = 0;
  return true;
}

}  // namespace outboxd::pg
