#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chaos/event_ledger.hpp"
#include "chaos/hook_receivers.hpp"
#include "support/sql_session.hpp"

namespace outboxd::chaos {

// One check of the verdict: what it holds to, and the ids that broke it.
struct check_result {
  std::string name;
  std::string what;
  std::uint64_t offending = 0;
  std::vector<std::string> examples;  // a few offending ids, to start looking from
  bool passed() const { return offending == 0; }
  void fail(std::string example);
};

struct run_counts {
  std::uint64_t events_committed = 0;  // by the database's word, ambiguous ones included
  std::uint64_t events_rolled_back = 0;
  std::uint64_t events_ambiguous = 0;
  std::uint64_t ambiguous_committed = 0;
  std::uint64_t deliveries = 0;
  std::uint64_t succeeded = 0;
  std::uint64_t dead = 0;
  std::uint64_t attempts = 0;
  std::uint64_t lease_expired_attempts = 0;
  std::uint64_t posts = 0;
  std::uint64_t messages_answered_ok = 0;
  std::uint64_t duplicate_posts = 0;  // a POST of a message after a 2xx had been answered for it
  std::uint64_t claims = 0;
  std::uint64_t token_audit_rows = 0;
};

// The checks on the final state, once the system has converged and every daemon has stopped.
class checker {
 public:
  checker(test::sql_session& sql, const event_ledger& ledger, const hook_receivers& receivers);
  std::vector<check_result> run();
  const run_counts& counts() const { return counts_; }

 private:
  test::sql_session& sql_;
  const event_ledger& ledger_;
  const hook_receivers& receivers_;
  run_counts counts_;
};

}  // namespace outboxd::chaos
