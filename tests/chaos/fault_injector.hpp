#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chaos/daemon_fleet.hpp"
#include "chaos/pg_cluster.hpp"

namespace outboxd::chaos {

enum class fault_kind {
  kill,                 // SIGKILL a daemon other than daemon 0, start it again shortly after
  graceful_restart,     // SIGTERM (it hands queued work back), then start it again
  pause,                // SIGSTOP a daemon past its lease, then SIGCONT
  partition_close,      // its proxy closes every connection and refuses new ones, past the lease
  partition_blackhole,  // its proxy swallows everything and closes nothing, past the lease
  database_stall,       // SIGSTOP the idle 'outboxd delivery' server sessions past the lease:
                        // what the daemons send them meanwhile runs late, after SIGCONT
  pg_restart_fast,
  pg_restart_immediate,
  terminate_listener,  // pg_terminate_backend of every 'outboxd listener' session
  terminate_workers,   // ... of every 'outboxd dispatcher' and 'outboxd delivery' session
};
inline constexpr int kFaultKinds = 10;
std::string_view fault_name(fault_kind kind);

// One injected fault. `daemon` is the daemon it hit, or -1 for the database and all daemons.
struct fault_record {
  fault_kind kind;
  int daemon = -1;
  std::chrono::system_clock::time_point started;
  std::chrono::system_clock::time_point ended;  // when the fault was over (restarted, resumed)
};

struct fault_options {
  std::chrono::milliseconds kill_interval{4'000};
  std::chrono::milliseconds fault_interval{3'000};
  std::chrono::milliseconds restart_delay{500};
  std::chrono::milliseconds long_fault{12'000};  // pauses, partitions and stalls
  std::chrono::milliseconds shutdown_timeout{5'000};
  std::uint64_t seed = 1;
  std::string admin_url;  // straight to the cluster, for pg_stat_activity
};

// Injects faults on a seeded schedule on its own thread: kills on one timeline, every other kind
// on a second one (each kind once first, in a seeded order, then at random), one at a time there.
// Daemon 0 is never killed or restarted, only paused and cut off, so one process spans the run.
class fault_injector {
 public:
  fault_injector(fault_options options, daemon_fleet& fleet, pg_cluster& cluster);
  ~fault_injector();

  void start(std::chrono::steady_clock::time_point until);
  // Ends the fault in progress (resumes, reconnects, restarts) and returns once all is whole.
  void stop();

  std::vector<fault_record> faults() const;
  // Whether `daemon` is disturbed at this moment: a fault on it or on the database is in
  // progress, or ended less than `settle` ago. Resource samples taken then are not compared.
  bool disturbed(int daemon, std::chrono::milliseconds settle) const;
  // A kind that could not be injected (e.g. the database did not come back) is an error.
  std::vector<std::string> errors() const;

 private:
  void run(std::chrono::steady_clock::time_point until);
  void kill_one();
  void begin(fault_kind kind);
  void end_current();
  void record(fault_kind kind, int daemon, std::chrono::system_clock::time_point started);
  std::vector<int> stall_delivery_sessions();
  void terminate_sessions(const std::string& condition);
  // Sleeps until `when` or stop(), whichever is first; false when stopping.
  bool wait_until(std::chrono::steady_clock::time_point when);

  fault_options options_;
  daemon_fleet& fleet_;
  pg_cluster& cluster_;
  std::mt19937_64 random_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;

  // The long fault in progress on the second timeline.
  struct current_fault {
    bool active = false;
    fault_kind kind = fault_kind::pause;
    int daemon = -1;
    std::vector<int> stalled;  // server pids, for database_stall
    std::chrono::system_clock::time_point started;
    std::chrono::steady_clock::time_point ends;
  } current_;

  mutable std::mutex mutex_;
  std::vector<fault_record> faults_;
  // Per daemon and for the database (last entry): a fault in progress, and the last one's end.
  struct disturbance {
    int in_progress = 0;
    std::chrono::steady_clock::time_point last_end;
  };
  std::vector<disturbance> disturbances_;
  void disturb(int daemon, bool begins);
  std::vector<std::string> errors_;
};

}  // namespace outboxd::chaos
