#pragma once

#include <boost/program_options/options_description.hpp>
#include <string>
#include <vector>

namespace outboxd::admin {

// `outboxd deliveries [--webhook ID] [--status S] [--since T] [--until T] [--limit N] [--json]`:
// deliveries newest first; T is an RFC 3339 timestamp or a duration before now (2h), compared
// with the delivery's creation (its event's fan-out).
struct deliveries_flags {
  std::string webhook;
  std::string status;
  std::string since;
  std::string until;
  std::string limit = "50";
  bool json = false;
  boost::program_options::options_description describe();
};

// `outboxd delivery ID [--json]`: one delivery and every attempt of it.
struct delivery_flags {
  std::string id;
  bool json = false;
  boost::program_options::options_description describe();
};

int run_deliveries(const std::vector<std::string>& args);
int run_delivery(const std::vector<std::string>& args);

// The statuses a delivery can have, for validating --status.
bool is_delivery_status(const std::string& status);

}  // namespace outboxd::admin
