#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "outboxd/pg/connection.hpp"

namespace outboxd::admin {

// A --since / --until value: an RFC 3339 timestamp ("2026-12-01T10:00:00Z", offsets and
// fractions allowed) or a duration before now ("2h", "30m", "90s"). A relative one is resolved by
// PostgreSQL's clock, like every due time in outboxd.
struct time_bound {
  std::string timestamp;  // RFC 3339 as given, for ::timestamptz; empty when relative
  std::string ago_ms;     // milliseconds before now(), for a relative one; empty otherwise
  std::chrono::system_clock::time_point approximate;  // by this host's clock, for range checks
};

// Throws config_error naming `setting`.
time_bound parse_time_bound(std::string_view text, std::string_view setting);

// RFC 3339 date-time; nullopt when `text` is not one.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

// --since must come before --until; throws config_error.
void check_range(const std::optional<time_bound>& since, const std::optional<time_bound>& until);

// A bound as the admin SQL takes it, two parameters: coalesce($ts::timestamptz,
// now() - $ms::bigint * interval '1 millisecond', ±infinity). Both null when unset.
pg::param timestamp_param(const std::optional<time_bound>& bound);
pg::param ago_param(const std::optional<time_bound>& bound);

}  // namespace outboxd::admin
