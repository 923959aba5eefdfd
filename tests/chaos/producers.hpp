#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "chaos/event_ledger.hpp"

namespace outboxd::chaos {

struct producer_options {
  std::string url;  // straight to PostgreSQL: the IAM is not behind the daemons' proxies
  std::string realm_id;
  int threads = 4;
  double rate = 120;   // events per second, all threads together
  int max_events = 8;  // per transaction, 1..max_events
  double rollback_share = 0.1;
  std::uint64_t seed = 1;
};

// The IAM: threads that each commit transactions of random size on their own session, insert
// events of random types with ~500 bytes of data each, and roll a share of them back. Every event
// carries a unique key in its data; the ledger says how each transaction ended.
class producers {
 public:
  producers(producer_options options, event_ledger& ledger);
  ~producers();  // stops and joins
  producers(const producers&) = delete;
  producers& operator=(const producers&) = delete;

  void stop();  // returns once every thread has finished its transaction and exited

  std::uint64_t transactions_committed() const { return committed_; }
  std::uint64_t transactions_rolled_back() const { return rolled_back_; }
  std::uint64_t transactions_ambiguous() const { return ambiguous_; }
  std::uint64_t transactions_failed() const { return failed_; }  // an error before COMMIT

 private:
  void run(int index);

  producer_options options_;
  event_ledger& ledger_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> committed_{0}, rolled_back_{0}, ambiguous_{0}, failed_{0};
  std::vector<std::thread> threads_;
};

}  // namespace outboxd::chaos
