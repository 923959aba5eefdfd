#pragma once

#include <chrono>
#include <string_view>
#include <vector>

namespace outboxd {

// A webhook policy's retry_schedule_ms as the claim reads it, "5000,60000" (array_to_string of a
// bigint[]): the delays, or none when the column is unset or unreadable, so the daemon's own
// schedule applies.
std::vector<std::chrono::milliseconds> parse_schedule_column(std::string_view text);

}  // namespace outboxd
