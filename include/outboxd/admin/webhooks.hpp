#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>
#include <vector>

namespace outboxd::admin {

// `outboxd webhooks [--json]`: the subscriptions as outboxd resolves them
// (outboxd.subscriptions()), with each webhook's disabled state (outboxd.disabled_webhooks), its
// policy (outboxd.webhook_policies) and its endpoint's circuit (outboxd.open_circuits, keyed by
// scheme://host:port as the daemon's breaker is).
struct webhooks_flags {
  bool json = false;
  boost::program_options::options_description describe();
};

// `outboxd enable WEBHOOK_ID`: re-enables a webhook disabled after a 410 Gone. Its cancelled
// deliveries stay cancelled (outboxd replay --webhook ID --status cancelled sends them again).
struct enable_flags {
  std::string webhook;
  boost::program_options::options_description describe();
};

int run_webhooks(const std::vector<std::string>& args);
int run_enable(const std::vector<std::string>& args);

// "5000,60000" (retry_schedule_ms as array_to_string gives it) → "5s,1m".
std::string format_schedule(std::string_view milliseconds_list);

}  // namespace outboxd::admin
