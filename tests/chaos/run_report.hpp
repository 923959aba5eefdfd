#pragma once

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "chaos/checker.hpp"
#include "chaos/fault_injector.hpp"
#include "chaos/resource_sampler.hpp"

namespace outboxd::chaos {

// How long the system took to get back to work after one fault (claim_audit.hpp says how it is
// read): for a fault on one daemon, from the fault's end until that daemon recorded an outcome;
// for the database and every daemon at once, until an event written after the fault's end had an
// outcome recorded. Unset when nothing was recorded by the end of the run, or when the next fault
// on the same target began first (interrupted).
struct recovery {
  fault_record fault;
  std::optional<std::chrono::milliseconds> took;
  bool interrupted = false;
};

struct run_report {
  std::string command;
  std::uint64_t seed = 0;
  std::chrono::milliseconds duration{0};
  int daemons = 0;
  double rate = 0;
  std::uint64_t transactions_committed = 0, transactions_rolled_back = 0,
                transactions_ambiguous = 0, transactions_failed = 0;
  run_counts counts;
  std::vector<recovery> recoveries;
  std::vector<std::string> fault_errors;
  int daemon_starts = 0;
  std::optional<std::chrono::milliseconds> converged_after;  // unset: not within the bound
  std::chrono::milliseconds converge_bound{0};
  growth_verdict resources;
  growth_tolerance tolerance;
  std::vector<check_result> checks;
  std::vector<std::string> daemon_error_lines;

  bool passed() const;
  void print(std::FILE* out) const;
  void write_json(const std::string& path) const;
};

}  // namespace outboxd::chaos
