// libFuzzer target: a receiver's Retry-After and Date headers, read as the deliverer reads them
// (parse_http_date for the receiver's clock, parse_retry_after against it), then given to the
// retry policy. Receivers are untrusted.
//
// Input: Retry-After NUL Date (the Date field optional).

#include <chrono>

#include "fuzz_input.hpp"
#include "outboxd/retry_policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  const auto parts = outboxd::fuzz::fields(outboxd::fuzz::as_text(data, size), 2);
  // A fixed "now", so an input behaves the same on every run.
  const system_clock::time_point fallback_now{seconds(1'700'000'000)};
  const auto receiver_now = outboxd::parse_http_date(parts[1]);
  const auto retry_after =
      outboxd::parse_retry_after(parts[0], receiver_now.value_or(fallback_now));
  if (retry_after) OUTBOXD_FUZZ_CHECK(*retry_after >= milliseconds(0));
  // Also against this host's clock: a date far from it must not overflow either.
  const auto against_clock = outboxd::parse_retry_after(parts[0], system_clock::now());
  if (against_clock) OUTBOXD_FUZZ_CHECK(*against_clock >= milliseconds(0));

  const outboxd::retry_policy policy(outboxd::retry_options{});
  const auto decision = policy.decide(1, 503, retry_after);
  OUTBOXD_FUZZ_CHECK(decision.what == outboxd::retry_decision::next::retry);
  OUTBOXD_FUZZ_CHECK(decision.delay >= milliseconds(0));
  OUTBOXD_FUZZ_CHECK(decision.delay <= policy.longest_delay() * 2);
  return 0;
}
