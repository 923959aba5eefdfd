#include "chaos/fault_injector.hpp"

#include <signal.h>

#include <algorithm>
#include <array>
#include <exception>

#include "support/sql_session.hpp"

namespace outboxd::chaos {
namespace {
using std::chrono::steady_clock;
using std::chrono::system_clock;

constexpr auto kWaitSlice = std::chrono::milliseconds(50);
// A non-kill fault starts only if it ends this long before the run does, so that producers still
// commit events after it (its recovery is measured by them).
constexpr auto kRecoveryRoom = std::chrono::seconds(3);

constexpr std::array kSecondTimeline{
    fault_kind::graceful_restart,     fault_kind::pause,
    fault_kind::partition_close,      fault_kind::partition_blackhole,
    fault_kind::database_stall,       fault_kind::pg_restart_fast,
    fault_kind::pg_restart_immediate, fault_kind::terminate_listener,
    fault_kind::terminate_workers,
};

bool is_long(fault_kind kind) {
  return kind == fault_kind::pause || kind == fault_kind::partition_close ||
         kind == fault_kind::partition_blackhole || kind == fault_kind::database_stall;
}

}  // namespace

std::string_view fault_name(fault_kind kind) {
  switch (kind) {
    case fault_kind::kill:
      return "kill";
    case fault_kind::graceful_restart:
      return "graceful_restart";
    case fault_kind::pause:
      return "pause";
    case fault_kind::partition_close:
      return "partition_close";
    case fault_kind::partition_blackhole:
      return "partition_blackhole";
    case fault_kind::database_stall:
      return "database_stall";
    case fault_kind::pg_restart_fast:
      return "pg_restart_fast";
    case fault_kind::pg_restart_immediate:
      return "pg_restart_immediate";
    case fault_kind::terminate_listener:
      return "terminate_listener";
    case fault_kind::terminate_workers:
      return "terminate_workers";
  }
  return "unknown";
}

fault_injector::fault_injector(fault_options options, daemon_fleet& fleet, pg_cluster& cluster)
    : options_(std::move(options)),
      fleet_(fleet),
      cluster_(cluster),
      random_(options_.seed),
      disturbances_(static_cast<std::size_t>(fleet.size()) + 1) {}

void fault_injector::disturb(int daemon, bool begins) {
  const std::lock_guard lock(mutex_);
  auto& d = disturbances_[daemon < 0 ? disturbances_.size() - 1 : static_cast<std::size_t>(daemon)];
  if (begins) {
    ++d.in_progress;
  } else {
    --d.in_progress;
    d.last_end = steady_clock::now();
  }
}

bool fault_injector::disturbed(int daemon, std::chrono::milliseconds settle) const {
  const std::lock_guard lock(mutex_);
  const auto now = steady_clock::now();
  for (const auto& d : {disturbances_[static_cast<std::size_t>(daemon)], disturbances_.back()}) {
    if (d.in_progress > 0 ||
        (d.last_end.time_since_epoch().count() != 0 && now - d.last_end < settle)) {
      return true;
    }
  }
  return false;
}

fault_injector::~fault_injector() { stop(); }

void fault_injector::start(steady_clock::time_point until) {
  thread_ = std::thread([this, until] {
    try {
      run(until);
    } catch (const std::exception& e) {
      const std::lock_guard lock(mutex_);
      errors_.push_back(std::string("fault injector stopped: ") + e.what());
    }
    end_current();
  });
}

void fault_injector::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<fault_record> fault_injector::faults() const {
  const std::lock_guard lock(mutex_);
  return faults_;
}

std::vector<std::string> fault_injector::errors() const {
  const std::lock_guard lock(mutex_);
  return errors_;
}

bool fault_injector::wait_until(steady_clock::time_point when) {
  while (!stopping_ && steady_clock::now() < when) {
    std::this_thread::sleep_for(
        std::min<steady_clock::duration>(kWaitSlice, when - steady_clock::now()));
  }
  return !stopping_;
}

void fault_injector::record(fault_kind kind, int daemon, system_clock::time_point started) {
  const std::lock_guard lock(mutex_);
  faults_.push_back({kind, daemon, started, system_clock::now()});
}

void fault_injector::run(steady_clock::time_point until) {
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  const auto jittered = [&](std::chrono::milliseconds base) {
    return std::chrono::duration_cast<steady_clock::duration>(base * jitter(random_));
  };
  auto order = std::vector<fault_kind>(kSecondTimeline.begin(), kSecondTimeline.end());
  std::shuffle(order.begin(), order.end(), random_);
  std::size_t next_in_order = 0;
  auto next_kill = steady_clock::now() + jittered(options_.kill_interval);
  auto next_fault = steady_clock::now() + options_.fault_interval;

  while (!stopping_) {
    const auto wake = std::min(next_kill, current_.active ? current_.ends : next_fault);
    if (!wait_until(wake)) break;
    if (current_.active && steady_clock::now() >= current_.ends) {
      end_current();
      next_fault = steady_clock::now() + options_.fault_interval;
    }
    if (steady_clock::now() >= next_kill) {
      if (steady_clock::now() + options_.restart_delay < until) kill_one();
      next_kill = steady_clock::now() + jittered(options_.kill_interval);
    }
    if (!current_.active && steady_clock::now() >= next_fault) {
      if (steady_clock::now() + options_.long_fault + kRecoveryRoom < until) {
        const auto kind = next_in_order < order.size()
                              ? order[next_in_order++]
                              : kSecondTimeline[std::uniform_int_distribution<std::size_t>(
                                    0, kSecondTimeline.size() - 1)(random_)];
        begin(kind);
      }
      if (!current_.active) next_fault = steady_clock::now() + options_.fault_interval;
    }
  }
}

void fault_injector::kill_one() {
  std::vector<int> candidates;
  for (int d = 1; d < fleet_.size(); ++d) {
    if (fleet_.running(d) && !(current_.active && current_.daemon == d)) candidates.push_back(d);
  }
  if (candidates.empty()) return;
  const int victim =
      candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(random_)];
  const auto started = system_clock::now();
  disturb(victim, true);
  fleet_.kill(victim);
  // Restarted even when stopping: the run ends with every daemon up.
  const auto restart_at = steady_clock::now() + options_.restart_delay;
  while (steady_clock::now() < restart_at) std::this_thread::sleep_for(kWaitSlice);
  fleet_.start(victim);
  disturb(victim, false);
  record(fault_kind::kill, victim, started);
}

void fault_injector::begin(fault_kind kind) {
  const auto started = system_clock::now();
  const auto pick = [&](int first) {
    std::vector<int> candidates;
    for (int d = first; d < fleet_.size(); ++d) {
      if (fleet_.running(d)) candidates.push_back(d);
    }
    if (candidates.empty()) return -1;
    return candidates[std::uniform_int_distribution<std::size_t>(0,
                                                                 candidates.size() - 1)(random_)];
  };
  try {
    if (is_long(kind)) {
      const int daemon = kind == fault_kind::database_stall ? -1 : pick(0);
      if (kind != fault_kind::database_stall && daemon < 0) return;
      disturb(daemon, true);
      std::vector<int> stalled;
      try {
        switch (kind) {
          case fault_kind::pause:
            fleet_.pause(daemon);
            break;
          case fault_kind::partition_close:
            fleet_.proxy(daemon).stop();
            break;
          case fault_kind::partition_blackhole:
            fleet_.proxy(daemon).blackhole(true);
            break;
          default:
            stalled = stall_delivery_sessions();
            break;
        }
      } catch (...) {
        disturb(daemon, false);
        throw;
      }
      current_ = {.active = true,
                  .kind = kind,
                  .daemon = daemon,
                  .stalled = std::move(stalled),
                  .started = started,
                  .ends = steady_clock::now() + options_.long_fault};
      return;
    }
    int daemon = -1;
    if (kind == fault_kind::graceful_restart) {
      daemon = pick(1);
      if (daemon < 0) return;
    }
    disturb(daemon, true);
    struct ends {
      fault_injector& self;
      int daemon;
      ~ends() { self.disturb(daemon, false); }
    } ending{*this, daemon};
    switch (kind) {
      case fault_kind::graceful_restart:
        fleet_.terminate(daemon, options_.shutdown_timeout + std::chrono::seconds(5));
        fleet_.start(daemon);
        break;
      case fault_kind::pg_restart_fast:
        cluster_.restart(pg_cluster::shutdown::fast);
        break;
      case fault_kind::pg_restart_immediate:
        cluster_.restart(pg_cluster::shutdown::immediate);
        break;
      case fault_kind::terminate_listener:
        terminate_sessions("application_name = 'outboxd listener'");
        break;
      default:
        terminate_sessions("application_name IN ('outboxd dispatcher', 'outboxd delivery')");
        break;
    }
    record(kind, daemon, started);
  } catch (const std::exception& e) {
    const std::lock_guard lock(mutex_);
    errors_.push_back(std::string(fault_name(kind)) + ": " + e.what());
  }
}

void fault_injector::end_current() {
  if (!current_.active) return;
  current_.active = false;
  struct ends {
    fault_injector& self;
    int daemon;
    ~ends() { self.disturb(daemon, false); }
  } ending{*this, current_.daemon};
  try {
    switch (current_.kind) {
      case fault_kind::pause:
        fleet_.resume(current_.daemon);
        break;
      case fault_kind::partition_close:
        fleet_.proxy(current_.daemon).start();
        break;
      case fault_kind::partition_blackhole:
        fleet_.proxy(current_.daemon).blackhole(false);
        break;
      default:
        for (const int pid : current_.stalled) ::kill(pid, SIGCONT);
        break;
    }
  } catch (const std::exception& e) {
    const std::lock_guard lock(mutex_);
    errors_.push_back(std::string(fault_name(current_.kind)) + " could not end: " + e.what());
    return;
  }
  record(current_.kind, current_.daemon, current_.started);
}

std::vector<int> fault_injector::stall_delivery_sessions() {
  test::sql_session sql(options_.admin_url, "chaos faults");
  std::vector<int> stalled;
  // Idle ones only: a session stopped in the middle of a statement could hold locks others need.
  // Under load every session may be busy at one moment; look again a few times.
  for (int look = 0; look < 40 && stalled.empty(); ++look) {
    if (look > 0) std::this_thread::sleep_for(kWaitSlice);
    const auto rows = sql.exec(
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'outboxd delivery' "
        "AND state = 'idle'");
    for (int r = 0; r < rows.rows(); ++r) {
      const auto pid = static_cast<int>(rows.int64(r, 0));
      if (::kill(pid, SIGSTOP) == 0) stalled.push_back(pid);
    }
  }
  if (stalled.empty()) throw std::runtime_error("no idle 'outboxd delivery' session to stall");
  return stalled;
}

void fault_injector::terminate_sessions(const std::string& condition) {
  test::sql_session sql(options_.admin_url, "chaos faults");
  const auto killed = sql.scalar(
      "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE " +
      condition);
  if (killed == 0) throw std::runtime_error("no session matched " + condition);
}

}  // namespace outboxd::chaos
