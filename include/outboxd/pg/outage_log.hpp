#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

namespace spdlog {
class logger;
}

namespace outboxd::pg {

struct outage_log_options {
  // The first repeat line comes this long after the first failure; each later gap doubles, up to
  // max_interval. The daemon starts it at its reconnect minimum.
  std::chrono::milliseconds first_interval{100};
  std::chrono::milliseconds max_interval{60'000};
  // Injected by tests; steady_clock::now otherwise.
  std::function<std::chrono::steady_clock::time_point()> now;
  // Where the lines go; the default logger when null.
  std::shared_ptr<spdlog::logger> logger;
};

// The daemon's one voice about PostgreSQL being unreachable. Every session of the daemon reports
// its failed and successful connects here (pg::connection does it when connection_options.outage
// is set), so an outage is told as one warning, then at most one line per step of a doubling
// interval with the number of failed attempts in between, then one "reachable again" line;
// rather than one warning per component per retry. Single-threaded, as the daemon is.
class outage_log {
 public:
  explicit outage_log(outage_log_options options = {});

  // A connect attempt failed. Returns true when it wrote a line.
  bool failed(std::string_view component, std::string_view message);
  // A connect attempt succeeded. Ends an outage (one info line, returns true); no-op otherwise.
  bool recovered();

  bool in_outage() const { return started_.has_value(); }
  // Failed attempts since the outage began (0 when there is none).
  std::uint64_t failures() const { return failures_; }

 private:
  std::chrono::steady_clock::time_point now() const;

  outage_log_options options_;
  std::optional<std::chrono::steady_clock::time_point> started_;
  std::chrono::steady_clock::time_point next_line_at_;
  std::chrono::milliseconds interval_{0};
  std::uint64_t failures_ = 0;
  std::uint64_t unreported_ = 0;  // failed attempts since the last line
};

}  // namespace outboxd::pg
