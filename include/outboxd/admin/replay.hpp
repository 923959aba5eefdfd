#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>
#include <vector>

namespace outboxd::admin {

// `outboxd replay DELIVERY_ID`, `outboxd replay --webhook ID --status dead|cancelled
// [--since T] [--until T]`, `outboxd replay --poison [EVENT_ID]`; `--dry-run` counts only.
//
// A replayed delivery is pending and due now, under the same message id (webhook-id): its next
// attempt continues the numbering, with a fresh retry schedule and attempt budget
// (replayed_attempts). Only finished deliveries are touched (succeeded, dead, cancelled), never
// pending or delivering ones: a daemon's claim is never disturbed, and the claim token is left as
// it is, so a write from an old claim stays fenced out. Poison events go back to the outbox
// through outboxd.replay_poison_event.
struct replay_flags {
  std::string id;
  std::string webhook;
  std::string status;
  std::string since;
  std::string until;
  bool poison = false;
  bool dry_run = false;
  boost::program_options::options_description describe();
};

int run_replay(const std::vector<std::string>& args);

}  // namespace outboxd::admin
