#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace outboxd::chaos {

// Everything a run of outboxd-chaos can be told. The defaults are the short form CI runs.
struct chaos_options {
  std::chrono::milliseconds duration{90'000};  // producers and faults run this long
  int daemons = 3;
  double rate = 120;  // events per second offered, all producers together
  int producers = 4;
  int max_events_per_transaction = 8;
  double rollback_share = 0.1;
  std::uint64_t seed = 1;

  // Faults.
  std::chrono::milliseconds kill_interval{4'000};   // SIGKILL of a daemon other than daemon 0
  std::chrono::milliseconds fault_interval{2'000};  // gap between the other faults
  std::chrono::milliseconds restart_delay{500};     // a killed daemon is started again after this

  // Receivers: the share of first answers to a message that fail in each way. A message fails
  // at most max_failures_per_message times (the always-failing event type excepted), so that only
  // those deliveries may end dead.
  double rate_500 = 0.05;
  double rate_429 = 0.05;
  double rate_slow = 0.03;
  double rate_reset = 0.03;
  int max_failures_per_message = 2;

  // The daemons' settings that decide how long faults and convergence take.
  std::chrono::milliseconds lease{10'000};
  std::chrono::milliseconds http_request_timeout{1'000};
  std::chrono::milliseconds statement_timeout{2'000};
  int max_attempts = 6;

  std::chrono::milliseconds converge_timeout{90'000};
  std::string outboxd;  // the binary under test
  std::optional<std::string> report_json;
  bool quiet = false;  // no progress lines

  // How long a pause, a partition or a stall lasts: past the lease, so others take over.
  std::chrono::milliseconds long_fault() const { return lease + std::chrono::milliseconds(2'000); }
};

// Parses argv; on --help or an error prints to stderr and returns nullopt with *exit_code set.
std::optional<chaos_options> parse_chaos_options(int argc, char** argv, int* exit_code);

}  // namespace outboxd::chaos
