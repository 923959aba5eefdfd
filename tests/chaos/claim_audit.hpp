#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "support/sql_session.hpp"

namespace outboxd::chaos {

// A trigger of the harness's own on outboxd.deliveries that writes every change of a delivery's
// claim token, status or attempt count into chaos_audit.transitions, with the holder before and
// after and the database's time. It shows what the tables' final state cannot: whether a claim
// token ever went back or was handed out twice (the fence's invariant, documented in
// sql/migrations/0003_lease.sql), whether a finished delivery ever changed again, and which
// daemon recorded what when (for recovery times).
namespace claim_audit {

void install(test::sql_session& sql);

// The first outcome recorded by the daemon `instance_id` for a claim it made after `after` (an
// attempt's outcome under its own claim: same token, out of 'delivering', attempt_count one up).
// A claim from before would count a write its previous process left running in the database.
std::optional<std::chrono::system_clock::time_point> first_outcome_by(
    test::sql_session& sql, const std::string& instance_id,
    std::chrono::system_clock::time_point after);
// The first outcome recorded, by any daemon, for an event written after `after`.
std::optional<std::chrono::system_clock::time_point> first_outcome_of_event_after(
    test::sql_session& sql, std::chrono::system_clock::time_point after);

}  // namespace claim_audit
}  // namespace outboxd::chaos
