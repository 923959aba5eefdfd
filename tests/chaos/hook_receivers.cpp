#include "chaos/hook_receivers.hpp"

#include <string_view>

#include "chaos/event_ledger.hpp"
#include "support/iam_rows.hpp"

namespace outboxd::chaos {
namespace {

// FNV-1a: a body's fingerprint, to compare copies without keeping them.
std::uint64_t fingerprint(std::string_view text) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (const unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

// The string value of "name" in a JSON text (jsonb prints a space after the colon; tolerate it).
std::string_view json_string_field(std::string_view json, std::string_view name) {
  const std::string needle = "\"" + std::string(name) + "\":";
  const auto at = json.find(needle);
  if (at == std::string_view::npos) return {};
  auto begin = at + needle.size();
  while (begin < json.size() && json[begin] == ' ') ++begin;
  if (begin >= json.size() || json[begin] != '"') return {};
  const auto end = json.find('"', begin + 1);
  if (end == std::string_view::npos) return {};
  return json.substr(begin + 1, end - begin - 1);
}

int type_index(std::string_view name) {
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (kEventTypes[t] == name) return t;
  }
  return -1;
}

}  // namespace

hook_receivers::hook_receivers(receiver_failure_rates rates, std::uint64_t seed)
    : rates_(rates), random_(seed * 7919 + 17) {
  // Two servers, so there are two endpoints (the daemons limit and break circuits per endpoint).
  // a: user.* and role.created; b: user.created and user.updated; c (on the second server): all,
  // and it fails every role.created message.
  for (int i = 0; i < 2; ++i) {
    receivers_.push_back(
        std::make_unique<test::receiver>(test::receiver::options{.keep_requests = false}));
  }
  webhooks_ = {
      {.id = test::uuid(101), .path = "/hook/a", .receiver = 0, .subscribed = 0b111},
      {.id = test::uuid(102), .path = "/hook/b", .receiver = 0, .subscribed = 0b011},
      {.id = test::uuid(103),
       .path = "/hook/c",
       .receiver = 1,
       .subscribed = 0b101,
       .always_failing = 2},
  };
  seen_.resize(webhooks_.size());
  for (std::size_t w = 0; w < webhooks_.size(); ++w) {
    receivers_[static_cast<std::size_t>(webhooks_[w].receiver)]->react_with(
        webhooks_[w].path,
        [this, w](const test::received_request& r) { return decide(static_cast<int>(w), r); });
  }
}

void hook_receivers::install(test::sql_session& sql, const std::string& realm_id) const {
  test::add_realm(sql, realm_id, "chaos");
  for (const auto& hook : webhooks_) {
    test::add_webhook(sql, hook.id, realm_id,
                      receivers_[static_cast<std::size_t>(hook.receiver)]->url(hook.path));
    for (int t = 0; t < kEventTypeCount; ++t) {
      if (hook.subscribes(t)) test::subscribe(sql, hook.id, std::string(kEventTypes[t]));
    }
  }
}

test::reaction hook_receivers::decide(int webhook, const test::received_request& request) {
  const auto key_text = json_string_field(request.body, "key");
  const auto event = json_string_field(request.body, "event");
  std::uint32_t producer = 0, sequence = 0;
  const std::lock_guard lock(mutex_);
  ++requests_;
  if (!event_ledger::parse_key(key_text, &producer, &sequence)) {
    ++unreadable_;
    return test::reaction::with_status(400);
  }
  const auto found = request.headers.find("webhook-id");
  const std::string webhook_id = found == request.headers.end() ? std::string() : found->second;
  const auto hash = fingerprint(request.body);
  auto& seen = seen_[static_cast<std::size_t>(webhook)][event_ledger::packed(producer, sequence)];
  if (seen.requests == 0) {
    seen.webhook_id = webhook_id;
    seen.body_hash = hash;
  } else {
    seen.other_webhook_id |= seen.webhook_id != webhook_id;
    seen.other_body |= seen.body_hash != hash;
  }
  ++seen.requests;
  if (seen.ok_given > 0) ++seen.after_ok;
  if (!test::verify_standard_webhooks(test::kFerrisKeySecret, request.headers, request.body)) {
    seen.bad_signature = true;
  }
  const auto& hook = webhooks_[static_cast<std::size_t>(webhook)];
  const int type = type_index(event);
  if (type < 0 || !hook.subscribes(type)) seen.wrong_event_type = true;

  if (type == hook.always_failing) {
    ++seen.failures_given;
    return test::reaction::with_status(500);
  }
  if (static_cast<int>(seen.failures_given) < rates_.max_failures_per_message) {
    const double draw = std::uniform_real_distribution<double>(0, 1)(random_);
    double bound = rates_.status_500;
    test::reaction failure;
    bool fails = true;
    if (draw < bound) {
      failure = test::reaction::with_status(500);
    } else if (draw < (bound += rates_.status_429)) {
      failure = {.status = 429, .body = "slow down", .retry_after = "1"};
    } else if (draw < (bound += rates_.slow)) {
      ++seen.slow_given;
      ++seen.failures_given;
      return {.status = 200, .body = "late", .delay = rates_.slow_by};
    } else if (draw < (bound += rates_.reset)) {
      failure = {.what = test::reaction::kind::reset};
    } else {
      fails = false;
    }
    if (fails) {
      ++seen.failures_given;
      return failure;
    }
  }
  ++seen.ok_given;
  return test::reaction::ok();
}

std::vector<hook_receivers::seen_map> hook_receivers::seen() const {
  const std::lock_guard lock(mutex_);
  return seen_;
}

std::uint64_t hook_receivers::requests() const {
  const std::lock_guard lock(mutex_);
  return requests_;
}

std::uint64_t hook_receivers::unreadable() const {
  const std::lock_guard lock(mutex_);
  return unreadable_;
}

}  // namespace outboxd::chaos
