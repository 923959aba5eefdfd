// libFuzzer target: one row of the claim (delivery_store::claim) as the deliverer turns it into a
// request. The IAM's tables, through the adapter, supply the URL, the headers column, the
// secrets and the event; webhook_policies the retry schedule. Each goes through what the daemon
// does with it: parse_url, build_body, sign, parse_schedule_column and the retry policy.
//
// Input: NUL-separated fields: url, headers, secret, previous secret, event, timestamp,
// resource_id, data, retry_schedule_ms (as array_to_string gives it).

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "fuzz_input.hpp"
#include "outboxd/http/client.hpp"
#include "outboxd/http/field_syntax.hpp"
#include "outboxd/json_text.hpp"
#include "outboxd/message.hpp"
#include "outboxd/retry_policy.hpp"
#include "outboxd/schedule_column.hpp"

namespace {

// The body is JSON whenever `data` is, as a jsonb column's text always is, and carries the event's
// strings as the receiver will read them.
void check_body(const std::string& body, std::string_view event, std::string_view data) {
  // An empty column is no JSON (and its data() may be null, which simdjson must not copy from).
  if (data.empty()) return;
  simdjson::dom::parser parser;
  simdjson::dom::element data_root;
  if (parser.parse(data.data(), data.size(), true).get(data_root) != simdjson::SUCCESS) return;
  simdjson::dom::element root;
  OUTBOXD_FUZZ_CHECK(parser.parse(body).get(root) == simdjson::SUCCESS);
  std::string_view event_field;
  OUTBOXD_FUZZ_CHECK(root["event"].get(event_field) == simdjson::SUCCESS);
  OUTBOXD_FUZZ_CHECK(event_field == outboxd::to_storable_text(event));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using std::chrono::milliseconds;
  const auto row = outboxd::fuzz::fields(outboxd::fuzz::as_text(data, size), 9);
  const auto url = row[0], headers = row[1], secret = row[2], previous_secret = row[3],
             event = row[4], timestamp = row[5], resource_id = row[6], event_data = row[7],
             schedule = row[8];

  // An unparsable URL is the attempt's invalid_url outcome; the row is still signed below, as the
  // signing step must hold for any row.
  if (const auto endpoint = outboxd::http::parse_url(url)) {
    OUTBOXD_FUZZ_CHECK(!endpoint->key().empty());
  }

  const auto body = outboxd::build_body(
      {.event = event, .timestamp = timestamp, .resource_id = resource_id, .data = event_data});
  check_body(body, event, event_data);

  std::vector<std::string_view> previous;
  if (!previous_secret.empty()) previous.push_back(previous_secret);
  const auto signed_headers = outboxd::sign({.custom_headers_json = headers,
                                             .secret = secret,
                                             .previous_secrets = previous,
                                             .message_id = "6f1a0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
                                             .timestamp = 1'700'000'000,
                                             .body = body});
  if (signed_headers.ok()) {
    for (const auto& header : signed_headers.headers) {
      OUTBOXD_FUZZ_CHECK(outboxd::http::is_token(header.name));
      OUTBOXD_FUZZ_CHECK(std::none_of(header.value.begin(), header.value.end(),
                                      outboxd::http::is_forbidden_in_value));
    }
  } else {
    OUTBOXD_FUZZ_CHECK(signed_headers.error_code == "invalid_header" ||
                       signed_headers.error_code == "invalid_secret");
    // Error details are logged and stored: a bad secret is described, never quoted.
    if (signed_headers.error_code == "invalid_secret") {
      OUTBOXD_FUZZ_CHECK(signed_headers.error_detail == "the secret is empty" ||
                         signed_headers.error_detail ==
                             "secret starts with whsec_ but is not valid base64");
    }
  }

  // The webhook's own schedule replaces the daemon's; any delay it holds must be usable.
  outboxd::retry_overrides overrides;
  overrides.delays = outboxd::parse_schedule_column(schedule);
  for (const auto delay : overrides.delays) OUTBOXD_FUZZ_CHECK(delay.count() >= 0);
  const outboxd::retry_policy policy(outboxd::retry_options{});
  for (int attempt = 1; attempt <= 3; ++attempt) {
    const auto decision = policy.decide(attempt, 500, std::nullopt, overrides);
    OUTBOXD_FUZZ_CHECK(decision.delay >= milliseconds(0));
  }
  return 0;
}
