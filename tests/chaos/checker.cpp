#include "chaos/checker.hpp"

#include <fmt/format.h>

#include <map>
#include <unordered_map>
#include <unordered_set>

namespace outboxd::chaos {
namespace {

constexpr std::size_t kExamples = 8;

struct stored_event {
  std::int64_t id = 0;
  int type = -1;
  int copies = 0;
};

struct stored_delivery {
  std::int64_t id = 0;
  std::string status;
  std::int64_t attempt_count = 0;
  std::string message_id;
  std::int64_t attempts = 0;
  std::int64_t first_attempt = 0;
  std::int64_t last_attempt = 0;
  std::int64_t succeeded_attempts = 0;
  int copies = 0;
};

int type_of(std::string_view name) {
  for (int t = 0; t < kEventTypeCount; ++t) {
    if (kEventTypes[t] == name) return t;
  }
  return -1;
}

// (event id, webhook index) as one key.
std::uint64_t pair_key(std::int64_t event_id, std::size_t webhook) {
  return (static_cast<std::uint64_t>(event_id) << 8) | webhook;
}

}  // namespace

void check_result::fail(std::string example) {
  ++offending;
  if (examples.size() < kExamples) examples.push_back(std::move(example));
}

checker::checker(test::sql_session& sql, const event_ledger& ledger,
                 const hook_receivers& receivers)
    : sql_(sql), ledger_(ledger), receivers_(receivers) {}

std::vector<check_result> checker::run() {
  std::vector<check_result> out;
  const auto& hooks = receivers_.webhooks();
  std::unordered_map<std::string, std::size_t> hook_index;
  for (std::size_t w = 0; w < hooks.size(); ++w) hook_index[hooks[w].id] = w;

  // ---- events ---------------------------------------------------------------------------------
  check_result drained{"outbox_drained",
                       "the outbox is empty and no event was set aside as poison"};
  const auto left = sql_.scalar("SELECT count(*) FROM outboxd.outbox");
  const auto poison = sql_.scalar("SELECT count(*) FROM outboxd.poison_events");
  if (left > 0) drained.fail(fmt::format("{} rows left in outboxd.outbox", left));
  if (poison > 0) drained.fail(fmt::format("{} rows in outboxd.poison_events", poison));
  out.push_back(drained);

  std::unordered_map<std::uint64_t, stored_event> events;
  check_result invented{"no_event_invented",
                        "no event exists for a transaction that rolled back, none that no producer "
                        "wrote, none twice"};
  {
    const auto rows = sql_.exec("SELECT id, event, data->>'key' FROM outboxd.events");
    for (int r = 0; r < rows.rows(); ++r) {
      std::uint32_t producer = 0, sequence = 0;
      if (!event_ledger::parse_key(rows.text(r, 2), &producer, &sequence)) {
        invented.fail(fmt::format("event {} carries no key", rows.text(r, 0)));
        continue;
      }
      auto& e = events[event_ledger::packed(producer, sequence)];
      e.id = rows.int64(r, 0);
      e.type = type_of(rows.text(r, 1));
      if (++e.copies == 2) invented.fail(fmt::format("key {} in two events", rows.text(r, 2)));
    }
  }
  check_result lost{"no_event_lost", "every committed transaction's events exist, once"};
  std::unordered_set<std::uint64_t> written;
  for (const auto& entry : ledger_.entries()) {
    const auto key = event_ledger::packed(entry.producer, entry.sequence);
    written.insert(key);
    const auto found = events.find(key);
    const bool present = found != events.end();
    const auto name = event_ledger::key(entry.producer, entry.sequence);
    switch (entry.outcome) {
      case event_ledger::fate::committed:
        ++counts_.events_committed;
        if (!present) lost.fail(name);
        break;
      case event_ledger::fate::rolled_back:
        ++counts_.events_rolled_back;
        if (present)
          invented.fail(name + " (rolled back) is event " + std::to_string(found->second.id));
        break;
      case event_ledger::fate::ambiguous:
        ++counts_.events_ambiguous;
        if (present) {
          ++counts_.ambiguous_committed;
          ++counts_.events_committed;
        }
        break;
    }
    if (present && found->second.type != entry.type) {
      invented.fail(
          fmt::format("event {} has another type than its producer wrote", found->second.id));
    }
  }
  for (const auto& [key, e] : events) {
    if (!written.contains(key)) invented.fail(fmt::format("event {}: no producer wrote it", e.id));
  }
  out.push_back(lost);
  out.push_back(invented);

  // ---- deliveries and attempts ------------------------------------------------------------------
  std::unordered_map<std::uint64_t, stored_delivery> deliveries;
  check_result fan_out{"one_delivery_per_subscribed_webhook",
                       "each committed event has exactly one delivery per subscribed webhook, and "
                       "no other"};
  {
    const auto rows = sql_.exec(
        "SELECT d.id, d.event_id, d.webhook_id::text, d.status, d.attempt_count, "
        "d.message_id::text, count(a.attempt_number), coalesce(min(a.attempt_number), 0), "
        "coalesce(max(a.attempt_number), 0), count(*) FILTER (WHERE a.succeeded), "
        "count(*) FILTER (WHERE a.error_code = 'lease_expired') "
        "FROM outboxd.deliveries d LEFT JOIN outboxd.attempts a ON a.delivery_id = d.id "
        "GROUP BY d.id");
    for (int r = 0; r < rows.rows(); ++r) {
      const auto w = hook_index.find(std::string(rows.text(r, 2)));
      if (w == hook_index.end()) {
        fan_out.fail(fmt::format("delivery {} for an unknown webhook", rows.text(r, 0)));
        continue;
      }
      auto& d = deliveries[pair_key(rows.int64(r, 1), w->second)];
      d.id = rows.int64(r, 0);
      d.status = rows.text(r, 3);
      d.attempt_count = rows.int64(r, 4);
      d.message_id = rows.text(r, 5);
      d.attempts = rows.int64(r, 6);
      d.first_attempt = rows.int64(r, 7);
      d.last_attempt = rows.int64(r, 8);
      d.succeeded_attempts = rows.int64(r, 9);
      counts_.lease_expired_attempts += static_cast<std::uint64_t>(rows.int64(r, 10));
      counts_.attempts += static_cast<std::uint64_t>(d.attempts);
      if (++d.copies == 2) fan_out.fail(fmt::format("delivery {} is a second one", d.id));
    }
  }
  counts_.deliveries = deliveries.size();
  check_result status{"final_status",
                      "every delivery succeeded, except those to a receiver that fails every "
                      "message of their event type: those are dead"};
  check_result one_success{"one_success_per_succeeded",
                           "a succeeded delivery has exactly one succeeding attempt; a dead one "
                           "none"};
  check_result numbering{"attempt_numbers",
                         "attempt numbers run 1..n without gaps or repeats, n = attempt_count"};
  check_result seen_check{"receivers_saw_every_delivery",
                          "the receiver saw every delivery, with the delivery's message id; a "
                          "success was recorded only where the receiver answered 2xx"};
  const auto seen = receivers_.seen();
  std::size_t expected = 0;
  for (const auto& [key, e] : events) {
    for (std::size_t w = 0; w < hooks.size(); ++w) {
      const auto found = deliveries.find(pair_key(e.id, w));
      if (!hooks[w].subscribes(e.type)) {
        if (found != deliveries.end()) {
          fan_out.fail(fmt::format("delivery {}: webhook {} does not subscribe to its event {}",
                                   found->second.id, w, e.id));
        }
        continue;
      }
      ++expected;
      if (found == deliveries.end()) {
        fan_out.fail(fmt::format("event {}: no delivery for webhook {}", e.id, w));
        continue;
      }
      const auto& d = found->second;
      const bool always_fails = hooks[w].always_failing == e.type;
      const std::string want = always_fails ? "dead" : "succeeded";
      if (d.status == "succeeded") ++counts_.succeeded;
      if (d.status == "dead") ++counts_.dead;
      if (d.status != want) status.fail(fmt::format("delivery {} is {}", d.id, d.status));
      if (d.succeeded_attempts != (d.status == "succeeded" ? 1 : 0)) {
        one_success.fail(fmt::format("delivery {} ({}): {} succeeding attempts", d.id, d.status,
                                     d.succeeded_attempts));
      }
      if (d.attempts != d.attempt_count || d.last_attempt != d.attempt_count ||
          (d.attempts > 0 && d.first_attempt != 1)) {
        numbering.fail(fmt::format("delivery {}: attempt_count {}, {} attempts numbered {}..{}",
                                   d.id, d.attempt_count, d.attempts, d.first_attempt,
                                   d.last_attempt));
      }
      const auto got = seen[w].find(key);
      if (got == seen[w].end()) {
        if (d.status == "succeeded" || d.status == "dead") {
          seen_check.fail(fmt::format("delivery {}: never reached its receiver", d.id));
        }
        continue;
      }
      if (got->second.webhook_id != d.message_id) {
        seen_check.fail(fmt::format("delivery {}: message id {}, receiver saw webhook-id {}", d.id,
                                    d.message_id, got->second.webhook_id));
      }
      if (d.status == "succeeded" && got->second.ok_given + got->second.slow_given == 0) {
        seen_check.fail(
            fmt::format("delivery {}: succeeded, but its receiver never answered 2xx", d.id));
      }
    }
  }
  (void)expected;
  out.push_back(fan_out);
  out.push_back(status);
  out.push_back(one_success);
  out.push_back(numbering);

  // ---- what the receivers saw
  // --------------------------------------------------------------------
  check_result copies{"duplicates_identical",
                      "every copy of a message carried the same webhook-id and body, a valid "
                      "signature, and belongs to a delivery"};
  if (receivers_.unreadable() > 0) {
    copies.fail(fmt::format("{} requests without an event key", receivers_.unreadable()));
  }
  counts_.posts = receivers_.requests();
  for (std::size_t w = 0; w < seen.size(); ++w) {
    for (const auto& [key, s] : seen[w]) {
      counts_.duplicate_posts += s.after_ok;
      if (s.ok_given > 0) ++counts_.messages_answered_ok;
      const auto name = fmt::format("webhook {} message {}", w, s.webhook_id);
      if (s.other_webhook_id) copies.fail(name + ": another webhook-id on a copy");
      if (s.other_body) copies.fail(name + ": another body on a copy");
      if (s.bad_signature) copies.fail(name + ": a signature did not verify");
      if (s.wrong_event_type) copies.fail(name + ": an event type it does not subscribe to");
      const auto e = events.find(key);
      if (e == events.end() || !deliveries.contains(pair_key(e->second.id, w))) {
        copies.fail(name + ": no delivery of a committed event");
      }
    }
  }
  out.push_back(seen_check);
  out.push_back(copies);

  // ---- the claim token audit
  // ---------------------------------------------------------------------
  counts_.token_audit_rows =
      static_cast<std::uint64_t>(sql_.scalar("SELECT count(*) FROM chaos_audit.transitions"));
  counts_.claims = static_cast<std::uint64_t>(
      sql_.scalar("SELECT count(*) FROM chaos_audit.transitions WHERE new_token > old_token"));
  check_result decrease{"claim_token_never_decreases",
                        "no write ever lowered a delivery's claim token"};
  {
    const auto rows = sql_.exec(
        "SELECT delivery_id, old_token, new_token, old_status, new_status FROM "
        "chaos_audit.transitions WHERE new_token < old_token ORDER BY id");
    for (int r = 0; r < rows.rows(); ++r) {
      decrease.fail(fmt::format("delivery {}: token {} -> {} ({} -> {})", rows.text(r, 0),
                                rows.text(r, 1), rows.text(r, 2), rows.text(r, 3),
                                rows.text(r, 4)));
    }
  }
  check_result repeat{"claim_token_never_repeats",
                      "no claim token value was handed out twice for one delivery"};
  {
    const auto rows = sql_.exec(
        "SELECT delivery_id, new_token, count(*) FROM chaos_audit.transitions "
        "WHERE new_token > old_token GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1");
    for (int r = 0; r < rows.rows(); ++r) {
      repeat.fail(fmt::format("delivery {}: token {} handed out {} times", rows.text(r, 0),
                              rows.text(r, 1), rows.text(r, 2)));
    }
  }
  check_result final_stays{"finished_stays_finished",
                           "a succeeded or dead delivery never changed again (no stale write "
                           "reopened it)"};
  {
    const auto rows = sql_.exec(
        "SELECT delivery_id, old_status, new_status, old_token, new_token, old_attempts, "
        "new_attempts FROM chaos_audit.transitions "
        "WHERE old_status IN ('succeeded', 'dead', 'cancelled') ORDER BY id");
    for (int r = 0; r < rows.rows(); ++r) {
      final_stays.fail(fmt::format("delivery {}: {} -> {} (token {} -> {}, attempts {} -> {})",
                                   rows.text(r, 0), rows.text(r, 1), rows.text(r, 2),
                                   rows.text(r, 3), rows.text(r, 4), rows.text(r, 5),
                                   rows.text(r, 6)));
    }
  }
  check_result stale{"no_stale_outcome_applied",
                     "an attempt's outcome changed a delivery only while its claim held it "
                     "('delivering', same token)"};
  {
    const auto rows = sql_.exec(
        "SELECT delivery_id, old_status, new_status, old_attempts, new_attempts FROM "
        "chaos_audit.transitions WHERE old_token = new_token AND old_status <> 'delivering' "
        "AND new_attempts <> old_attempts ORDER BY id");
    for (int r = 0; r < rows.rows(); ++r) {
      stale.fail(fmt::format("delivery {}: {} -> {}, attempts {} -> {}", rows.text(r, 0),
                             rows.text(r, 1), rows.text(r, 2), rows.text(r, 3), rows.text(r, 4)));
    }
  }
  out.push_back(decrease);
  out.push_back(repeat);
  out.push_back(stale);
  out.push_back(final_stays);
  return out;
}

}  // namespace outboxd::chaos
