#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/tcp_proxy.hpp"

namespace outboxd::chaos {

struct fleet_options {
  std::string binary;
  std::string database_url;  // the cluster; each daemon reaches it through its own proxy
  int daemons = 3;
  std::vector<std::string> run_arguments;  // shared by every daemon, after "run"
};

// The daemons under test, each with its own TCP proxy to PostgreSQL so one daemon's link can be
// cut alone. Daemon i runs with --instance-id chaos-d<i>, which the database records in
// deliveries.leased_by. Safe to call from several threads.
class daemon_fleet {
 public:
  explicit daemon_fleet(fleet_options options);
  ~daemon_fleet();  // SIGKILLs whatever still runs (after resuming what is paused)

  int size() const { return static_cast<int>(slots_.size()); }
  static std::string instance_id(int daemon) { return "chaos-d" + std::to_string(daemon); }

  void start(int daemon);
  // SIGKILL, waited for.
  void kill(int daemon);
  // SIGTERM, waited for (SIGKILL past `timeout`); returns the exit code.
  int terminate(int daemon, std::chrono::milliseconds timeout);
  void pause(int daemon);   // SIGSTOP
  void resume(int daemon);  // SIGCONT
  bool running(int daemon) const;
  int pid(int daemon) const;  // -1 when not running
  test::tcp_proxy& proxy(int daemon) { return *slots_[static_cast<std::size_t>(daemon)].proxy; }

  // Lines of every process's log (kept across restarts) that report an error or worse.
  std::vector<std::string> error_lines() const;
  std::string log_tail(int daemon, std::size_t lines) const;
  int starts() const;

 private:
  struct slot {
    std::unique_ptr<test::tcp_proxy> proxy;
    std::unique_ptr<test::daemon_process> process;
    bool paused = false;
  };
  // Keeps what matters of an ending process's log, then lets it go.
  void retire(slot& s);

  fleet_options options_;
  mutable std::mutex mutex_;
  std::vector<slot> slots_;
  std::vector<std::string> error_lines_;
  int starts_ = 0;
};

}  // namespace outboxd::chaos
