#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace outboxd::chaos {

// One reading of a process's resources.
struct resource_sample {
  std::chrono::steady_clock::time_point at;
  std::int64_t fds = 0;
  std::int64_t rss_kib = 0;
  std::int64_t connections = 0;  // to PostgreSQL, as its proxy counts them
  bool disturbed = false;        // taken during or just after a fault on it or the database
};

// What growth is tolerated between the first and the last third of a run: each third's largest
// reading is compared, so a pause or a partition in one of them does not hide or fake growth.
struct growth_tolerance {
  std::int64_t fds = 8;
  std::int64_t connections = 2;
  double rss_factor = 1.25;
  std::int64_t rss_slack_kib = 8 * 1024;
};

struct growth_verdict {
  resource_sample first;              // each field: the first third's largest
  resource_sample last;               // and the last third's
  std::size_t samples = 0;            // undisturbed ones, which alone are compared
  std::vector<std::string> problems;  // empty: no growth beyond the tolerance
};

// Samples one process (/proc/PID/fd, VmRSS of /proc/PID/status) and its database connections
// once a second on its own thread, until stop(). A sample taken while `disturbed` says so is kept
// out of the comparison: a partition or a database restart makes a daemon reconnect, and its
// connections and descriptors peak for a moment without any leak.
class resource_sampler {
 public:
  resource_sampler(int pid, std::function<std::int64_t()> connections,
                   std::function<bool()> disturbed);
  ~resource_sampler();
  void stop();
  growth_verdict judge(const growth_tolerance& tolerance) const;

 private:
  void run();

  int pid_;
  std::function<std::int64_t()> connections_;
  std::function<bool()> disturbed_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<resource_sample> samples_;
  std::thread thread_;
};

}  // namespace outboxd::chaos
