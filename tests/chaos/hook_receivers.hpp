#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "support/receiver.hpp"
#include "support/sql_session.hpp"

namespace outboxd::chaos {

// One webhook of the harness: where it points and what it subscribes to.
struct webhook_spec {
  std::string id;    // uuid
  std::string path;  // on its receiver
  int receiver = 0;
  unsigned subscribed = 0;  // bit i: subscribes to kEventTypes[i]
  int always_failing = -1;  // an event type whose every message this receiver fails, or -1
  bool subscribes(int type) const { return (subscribed >> type) & 1U; }
};

struct receiver_failure_rates {
  double status_500 = 0.05;
  double status_429 = 0.05;  // with Retry-After: 1
  double slow = 0.03;        // a 200 only after the daemon's request deadline
  double reset = 0.03;       // the connection reset after the request was read
  int max_failures_per_message = 2;
  std::chrono::milliseconds slow_by{1'500};
};

// What the receivers saw of one (event, webhook): just what the check needs, so a long run keeps
// a few dozen bytes per message rather than every request.
struct message_seen {
  std::string webhook_id;       // the first request's webhook-id header
  std::uint64_t body_hash = 0;  // the first request's body
  std::uint32_t requests = 0;
  std::uint32_t failures_given = 0;
  std::uint32_t ok_given = 0;    // 2xx answered at once
  std::uint32_t slow_given = 0;  // 2xx answered after the request deadline
  std::uint32_t after_ok = 0;    // requests that came after a 2xx had been answered: duplicates
  bool other_webhook_id = false;
  bool other_body = false;
  bool bad_signature = false;
  bool wrong_event_type = false;
};

// The HTTP side: real receivers on loopback answering per a seeded plan, one webhook's receiver
// failing every message of one event type, and a record of every (event, webhook) seen.
class hook_receivers {
 public:
  hook_receivers(receiver_failure_rates rates, std::uint64_t seed);

  const std::vector<webhook_spec>& webhooks() const { return webhooks_; }
  // The realm, its webhooks and their subscriptions, in FerrisKey's tables.
  void install(test::sql_session& sql, const std::string& realm_id) const;

  // Keyed by webhook index, then event key (event_ledger::packed).
  using seen_map = std::unordered_map<std::uint64_t, message_seen>;
  std::vector<seen_map> seen() const;
  std::uint64_t requests() const;
  std::uint64_t unreadable() const;  // requests whose body carried no event key

 private:
  test::reaction decide(int webhook, const test::received_request& request);

  receiver_failure_rates rates_;
  std::vector<std::unique_ptr<test::receiver>> receivers_;
  std::vector<webhook_spec> webhooks_;
  mutable std::mutex mutex_;
  std::mt19937_64 random_;
  std::vector<seen_map> seen_;
  std::uint64_t requests_ = 0;
  std::uint64_t unreadable_ = 0;
};

}  // namespace outboxd::chaos
