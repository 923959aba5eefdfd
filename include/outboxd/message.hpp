#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd {

// One event as the delivery store reads it from outboxd.events.
struct event_view {
  std::string_view event;      // e.g. "user.created"; any string (escaped into the body)
  std::string_view timestamp;  // RFC 3339 UTC as the store formats it: 2026-11-29T16:00:00.123456Z
  std::string_view resource_id;  // UUID text
  std::string_view data;         // the jsonb column's text, verbatim; "null" for SQL NULL
};

// The body every attempt and every subscriber of one event gets:
//   {"event":…,"timestamp":…,"resource_id":…,"data":…}
// A pure function of the event, so byte-identical however often it is built.
std::string build_body(const event_view& event);

struct http_header {
  std::string name;
  std::string value;
};

// What one POST needs signed.
struct signing_request {
  std::string_view custom_headers_json;  // the webhook's headers column: {"Name": "value", ...}
  std::string_view secret;               // the webhook's secret column
  // Secrets the webhook had before, still in their grace period after a rotation: each also signs
  // webhook-signature, after the current one. x-ferriskey-signature holds the current one only.
  std::vector<std::string_view> previous_secrets;
  std::string_view message_id;  // stable per delivery; webhook-id and x-ferriskey-delivery-id
  std::int64_t timestamp = 0;   // Unix seconds of this attempt
  std::string_view body;
};

struct signed_headers {
  std::vector<http_header> headers;  // the webhook's own headers first, then outboxd's
  std::string error_code;            // empty, or "invalid_header" / "invalid_secret"
  std::string error_detail;          // which header and why; never a header value or the secret
  bool ok() const { return error_code.empty(); }
};

// The headers of one POST: the webhook's custom headers (those naming a framing or signature
// header are dropped: ours win), Content-Type, User-Agent, the Standard Webhooks trio
// (webhook-id, webhook-timestamp, webhook-signature) and FerrisKey's trio
// (x-ferriskey-timestamp, x-ferriskey-delivery-id, x-ferriskey-signature).
// A custom header whose name is not an HTTP token, whose value is not a JSON string, or whose value
// holds CR, LF, NUL or another control character fails with invalid_header.
signed_headers sign(const signing_request& request);

// The Standard Webhooks HMAC key: the base64-decoded bytes after "whsec_", otherwise the secret's
// own bytes. nullopt for a "whsec_" secret that is not valid base64.
std::optional<std::string> standard_webhooks_key(std::string_view secret);

// "v1," + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
std::string standard_webhooks_signature(std::string_view key, std::string_view message_id,
                                        std::int64_t timestamp, std::string_view body);

// One "v1,<base64>" per key, in order, separated by single spaces: the form the Standard Webhooks
// specification gives webhook-signature while a key is rotated (a receiver accepts a message when
// any of them verifies with its key).
std::string standard_webhooks_signatures(std::span<const std::string> keys,
                                         std::string_view message_id, std::int64_t timestamp,
                                         std::string_view body);

// Lowercase hex of HMAC-SHA256(secret's ASCII bytes, "{timestamp}.{body}").
std::string ferriskey_signature(std::string_view secret, std::int64_t timestamp,
                                std::string_view body);

}  // namespace outboxd
