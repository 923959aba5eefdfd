#include "outboxd/message.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "outboxd/http/field_syntax.hpp"
#include "outboxd/json_text.hpp"

namespace outboxd {

namespace {

constexpr std::string_view kWhsecPrefix = "whsec_";
constexpr std::string_view kHexDigits = "0123456789abcdef";
constexpr std::string_view kUserAgent = "outboxd/" OUTBOXD_VERSION;

// Headers that frame the request or carry outboxd's signatures. A webhook may not set them: a
// custom Content-Length or Transfer-Encoding would desynchronise the HTTP framing, and a custom
// webhook-signature would let a misconfigured row forge what the receiver verifies.
constexpr std::array<std::string_view, 17> kReservedHeaders = {
    "host",
    "content-type",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-ferriskey-timestamp",
    "x-ferriskey-delivery-id",
    "x-ferriskey-signature",
};

using hmac_digest = std::array<unsigned char, 32>;

bool is_reserved(std::string_view name) {
  for (const auto reserved : kReservedHeaders) {
    if (http::equals_ignoring_case(name, reserved)) return true;
  }
  return false;
}

std::string hex_byte(unsigned char c) {
  std::string out = "0x";
  out += kHexDigits[c >> 4];
  out += kHexDigits[c & 0x0f];
  return out;
}

std::string quoted_json(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

hmac_digest hmac_sha256(std::string_view key, std::string_view message) {
  // OpenSSL reads a null key as "no key given" rather than an empty key, and an empty
  // string_view may have a null data().
  static constexpr unsigned char kEmpty = 0;
  const void* key_bytes = key.empty() ? &kEmpty : static_cast<const void*>(key.data());
  hmac_digest digest{};
  unsigned int length = 0;
  // Secrets are a database column of a few dozen bytes, far below the int limit of key_len.
  HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
       &length);
  return digest;
}

std::string signed_content(std::string_view prefix, std::int64_t timestamp, std::string_view body) {
  std::string content;
  const std::string ts = std::to_string(timestamp);
  content.reserve(prefix.size() + ts.size() + 2 + body.size());
  content += prefix;
  content += ts;
  content += '.';
  content += body;
  return content;
}

std::string base64_encode(const hmac_digest& digest) {
  // 4 characters per 3 bytes, plus the NUL EVP_EncodeBlock always writes.
  std::array<unsigned char, (hmac_digest().size() + 2) / 3 * 4 + 1> encoded{};
  const int length =
      EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<const char*>(encoded.data()),
                     static_cast<std::size_t>(length));
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// Standard alphabet, padding either complete or absent. Written by hand because EVP_DecodeBlock
// demands padding, skips whitespace and counts padding as decoded zero bytes.
std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 == 0) {
    // Complete padding: at most two '=' and only at the end.
    std::size_t padding = 0;
    while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
      ++padding;
    }
    text.remove_suffix(padding);
  }
  // A single leftover character carries only 6 bits: not a whole byte.
  if (text.size() % 4 == 1) return std::nullopt;

  std::string out;
  out.reserve(text.size() / 4 * 3 + 2);
  std::uint32_t bits = 0;
  int bit_count = 0;
  for (const char c : text) {
    const int value = base64_value(c);
    if (value < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    bit_count += 6;
    if (bit_count >= 8) {
      bit_count -= 8;
      out += static_cast<char>((bits >> bit_count) & 0xff);
    }
  }
  return out;
}

// Describes a bad header name without echoing what follows the first bad byte: a name such as
// "Authorization: Bearer …" is a credential pasted into the wrong place.
std::string describe_bad_name(std::string_view name) {
  if (name.empty()) return "a header name is empty";
  std::size_t bad = 0;
  while (bad < name.size() && http::is_token_char(name[bad])) ++bad;
  return "header name " + quoted_json(name.substr(0, bad)) + "... is not an HTTP token (" +
         hex_byte(static_cast<unsigned char>(name[bad])) + " at byte " + std::to_string(bad) + ")";
}

signed_headers fail(std::string code, std::string detail) {
  signed_headers result;
  result.error_code = std::move(code);
  result.error_detail = std::move(detail);
  return result;
}

// Appends the webhook's own headers, validated, leaving out the reserved ones. Returns the error,
// or nullopt.
std::optional<signed_headers> append_custom_headers(std::string_view json,
                                                    std::vector<http_header>& headers,
                                                    bool& has_user_agent) {
  if (json.empty()) return std::nullopt;

  // One parser per thread: it keeps its buffers between calls instead of allocating per POST.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  // The column's text has no simdjson padding, so let the parser copy it.
  if (const auto error = parser.parse(json.data(), json.size(), true).get(root); error) {
    return fail("invalid_header",
                std::string("headers column is not valid JSON: ") + simdjson::error_message(error));
  }
  if (root.is_null()) return std::nullopt;  // a JSON null column: no custom headers
  simdjson::dom::object object;
  if (root.get(object) != simdjson::SUCCESS) {
    return fail("invalid_header", "headers column is not a JSON object");
  }

  // The DOM keeps the document's order, which is the order the webhook's owner wrote.
  for (const auto field : object) {
    const std::string_view name = field.key;
    std::string_view value;
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return http::is_token_char(c); })) {
      return fail("invalid_header", describe_bad_name(name));
    }
    if (field.value.get(value) != simdjson::SUCCESS) {
      return fail("invalid_header", "header " + quoted_json(name) + " is not a string");
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (http::is_forbidden_in_value(value[i])) {
        return fail("invalid_header", "header " + quoted_json(name) +
                                          " has a control character in its value (" +
                                          hex_byte(static_cast<unsigned char>(value[i])) +
                                          " at byte " + std::to_string(i) + ")");
      }
    }
    // Validated before being dropped, so a broken headers column is reported however it is spelt.
    if (is_reserved(name)) continue;
    if (http::equals_ignoring_case(name, "user-agent")) has_user_agent = true;
    headers.push_back({std::string(name), std::string(value)});
  }
  return std::nullopt;
}

}  // namespace

std::string build_body(const event_view& event) {
  std::string body;
  body.reserve(64 + event.event.size() + event.timestamp.size() + event.resource_id.size() +
               event.data.size());
  body += "{\"event\":";
  append_json_string(body, event.event);
  body += ",\"timestamp\":";
  append_json_string(body, event.timestamp);
  body += ",\"resource_id\":";
  append_json_string(body, event.resource_id);
  body += ",\"data\":";
  // jsonb's text output is already valid JSON; re-serialising it could only change its bytes.
  body += event.data.empty() ? std::string_view("null") : event.data;
  body += '}';
  return body;
}

std::optional<std::string> standard_webhooks_key(std::string_view secret) {
  if (!secret.starts_with(kWhsecPrefix)) return std::string(secret);
  return base64_decode(secret.substr(kWhsecPrefix.size()));
}

std::string standard_webhooks_signature(std::string_view key, std::string_view message_id,
                                        std::int64_t timestamp, std::string_view body) {
  // The id cannot contain '.' (callers pass UUIDs), so the signed content parses unambiguously.
  std::string prefix(message_id);
  prefix += '.';
  return "v1," + base64_encode(hmac_sha256(key, signed_content(prefix, timestamp, body)));
}

std::string standard_webhooks_signatures(std::span<const std::string> keys,
                                         std::string_view message_id, std::int64_t timestamp,
                                         std::string_view body) {
  std::string signatures;
  for (const auto& key : keys) {
    if (!signatures.empty()) signatures += ' ';
    signatures += standard_webhooks_signature(key, message_id, timestamp, body);
  }
  return signatures;
}

std::string ferriskey_signature(std::string_view secret, std::int64_t timestamp,
                                std::string_view body) {
  const hmac_digest digest = hmac_sha256(secret, signed_content("", timestamp, body));
  std::string hex;
  hex.reserve(digest.size() * 2);
  for (const unsigned char c : digest) {
    hex += kHexDigits[c >> 4];
    hex += kHexDigits[c & 0x0f];
  }
  return hex;
}

signed_headers sign(const signing_request& request) {
  const std::optional<std::string> key = standard_webhooks_key(request.secret);
  if (!key) return fail("invalid_secret", "secret starts with whsec_ but is not valid base64");
  // An empty key signs nothing: anyone could forge the signature.
  if (key->empty()) return fail("invalid_secret", "the secret is empty");
  // The current key first. A previous secret that yields no key, or the current one again, adds
  // nothing: it cannot fail a message that the current secret signs.
  std::vector<std::string> keys{*key};
  for (const auto previous : request.previous_secrets) {
    auto previous_key = standard_webhooks_key(previous);
    if (!previous_key || previous_key->empty()) continue;
    if (std::find(keys.begin(), keys.end(), *previous_key) != keys.end()) continue;
    keys.push_back(std::move(*previous_key));
  }

  signed_headers result;
  bool has_user_agent = false;
  if (auto error =
          append_custom_headers(request.custom_headers_json, result.headers, has_user_agent)) {
    return std::move(*error);
  }

  // message_id is a UUID (callers guarantee it), so it needs no validation as a header value.
  const std::string timestamp = std::to_string(request.timestamp);
  const std::string message_id(request.message_id);
  auto& headers = result.headers;
  headers.push_back({"Content-Type", "application/json"});
  if (!has_user_agent) headers.push_back({"User-Agent", std::string(kUserAgent)});
  headers.push_back({"webhook-id", message_id});
  headers.push_back({"webhook-timestamp", timestamp});
  headers.push_back(
      {"webhook-signature",
       standard_webhooks_signatures(keys, request.message_id, request.timestamp, request.body)});
  headers.push_back({"x-ferriskey-timestamp", timestamp});
  headers.push_back({"x-ferriskey-delivery-id", message_id});
  // FerrisKey's receivers key on the secret's text as stored, "whsec_" prefix and all.
  headers.push_back({"x-ferriskey-signature",
                     ferriskey_signature(request.secret, request.timestamp, request.body)});
  return result;
}

}  // namespace outboxd
