#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>
#include <vector>

namespace outboxd::admin {

// `outboxd policy set WEBHOOK_ID [--retry-schedule 5s,1m] [--max-attempts N] [--max-in-flight N]`,
// `outboxd policy show [WEBHOOK_ID] [--json]`, `outboxd policy clear WEBHOOK_ID`: one webhook's
// own settings (outboxd.webhook_policies), which the daemon applies from its next claim of each
// delivery on; what a webhook does not set is the daemon's. `set` changes only what it is given.
// --max-in-flight limits the webhook's requests in flight on top of its endpoint's limit
// (--max-in-flight-per-endpoint), which still applies.
struct policy_flags {
  std::string action;
  std::string webhook;
  std::string retry_schedule;
  std::string max_attempts;
  std::string max_in_flight;
  bool json = false;
  boost::program_options::options_description describe();
};

int run_policy(const std::vector<std::string>& args);

}  // namespace outboxd::admin
