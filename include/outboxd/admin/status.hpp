#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>
#include <vector>

namespace outboxd::admin {

// `outboxd status [--json]`: the outbox backlog and its oldest event's age, deliveries due,
// delivering and dead, disabled webhooks, poison events and open circuits.
struct status_flags {
  bool json = false;
  boost::program_options::options_description describe();
};

int run_status(const std::vector<std::string>& args);

}  // namespace outboxd::admin
