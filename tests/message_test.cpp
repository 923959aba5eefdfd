#include "outboxd/message.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

namespace outboxd {
namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

header_list to_list(const std::vector<http_header>& headers) {
  header_list list;
  for (const auto& header : headers) list.emplace_back(header.name, header.value);
  return list;
}

std::vector<std::string> names_of(const signed_headers& result) {
  std::vector<std::string> names;
  for (const auto& header : result.headers) names.push_back(header.name);
  return names;
}

const std::string* find_header(const signed_headers& result, std::string_view name) {
  for (const auto& header : result.headers) {
    if (header.name == name) return &header.value;
  }
  return nullptr;
}

signing_request request_with_headers(std::string_view headers_json) {
  return {.custom_headers_json = headers_json,
          .secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
          .message_id = "0b6c9f1e-6b1f-4c1e-9a53-6f2d2d1c7a10",
          .timestamp = 1700000000,
          .body = R"({"event":"user.created"})"};
}

// Independent of daemon/message.cpp: OpenSSL's one-shot HMAC, encoded here.
std::string reference_hmac(std::string_view key, std::string_view message) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
       &length);
  return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

std::string reference_hmac_hex(std::string_view key, std::string_view message) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (const char c : reference_hmac(key, message)) {
    hex += kHex[static_cast<unsigned char>(c) >> 4];
    hex += kHex[static_cast<unsigned char>(c) & 0x0f];
  }
  return hex;
}

std::string reference_hmac_base64(std::string_view key, std::string_view message) {
  const std::string digest = reference_hmac(key, message);
  std::array<unsigned char, 64> encoded{};
  const int length =
      EVP_EncodeBlock(encoded.data(), reinterpret_cast<const unsigned char*>(digest.data()),
                      static_cast<int>(digest.size()));
  return std::string(reinterpret_cast<const char*>(encoded.data()),
                     static_cast<std::size_t>(length));
}

// --- signatures -------------------------------------------------------------------------------

TEST(message, standard_webhooks_signature_matches_the_specification_vector) {
  const auto key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(standard_webhooks_signature(*key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                        R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(message, ferriskey_signature_matches_the_reference_vector) {
  EXPECT_EQ(ferriskey_signature("a-secret", 1700000000, R"({"event":"user.created"})"),
            "2f4dc2daabe94fe62ccc966f1649f0c78e521b4d54314bc0713a873e61cd3305");
}

TEST(message, standard_webhooks_key_decodes_whsec_with_or_without_padding) {
  EXPECT_EQ(standard_webhooks_key("whsec_aGVsbG8="), std::optional<std::string>("hello"));
  EXPECT_EQ(standard_webhooks_key("whsec_aGVsbG8"), std::optional<std::string>("hello"));
  EXPECT_EQ(standard_webhooks_key("whsec_aGk="), std::optional<std::string>("hi"));
  EXPECT_EQ(standard_webhooks_key("whsec_aA=="), std::optional<std::string>("h"));
  EXPECT_EQ(standard_webhooks_key("whsec_aA"), std::optional<std::string>("h"));
  EXPECT_EQ(standard_webhooks_key("whsec_+/+/"), std::optional<std::string>("\xfb\xff\xbf"));
}

TEST(message, standard_webhooks_key_rejects_invalid_base64) {
  EXPECT_EQ(standard_webhooks_key("whsec_a"), std::nullopt);          // 6 bits: no whole byte
  EXPECT_EQ(standard_webhooks_key("whsec_aGk*"), std::nullopt);       // outside the alphabet
  EXPECT_EQ(standard_webhooks_key("whsec_aG-_"), std::nullopt);       // URL-safe alphabet
  EXPECT_EQ(standard_webhooks_key("whsec_aA="), std::nullopt);        // partial padding
  EXPECT_EQ(standard_webhooks_key("whsec_a==="), std::nullopt);       // too much padding
  EXPECT_EQ(standard_webhooks_key("whsec_===="), std::nullopt);       // padding only
  EXPECT_EQ(standard_webhooks_key("whsec_aA==aGk="), std::nullopt);   // padding in the middle
  EXPECT_EQ(standard_webhooks_key("whsec_aGVs bG8="), std::nullopt);  // whitespace
}

TEST(message, standard_webhooks_key_keeps_other_secrets_as_bytes) {
  EXPECT_EQ(standard_webhooks_key("plain-secret"), std::optional<std::string>("plain-secret"));
  // The prefix is case-sensitive: this is not base64-decoded.
  EXPECT_EQ(standard_webhooks_key("WHSEC_aGk="), std::optional<std::string>("WHSEC_aGk="));
}

// --- build_body -------------------------------------------------------------------------------

TEST(message, build_body_has_the_exact_bytes) {
  const event_view event{.event = "user.created",
                         .timestamp = "2026-11-29T16:00:00.123456Z",
                         .resource_id = "9b2d6a3e-1f4c-4e8a-b7d2-0c5e3f1a2b4c",
                         .data = R"({"email": "ada@example.com", "id": 7})"};
  EXPECT_EQ(build_body(event),
            R"({"event":"user.created","timestamp":"2026-11-29T16:00:00.123456Z",)"
            R"("resource_id":"9b2d6a3e-1f4c-4e8a-b7d2-0c5e3f1a2b4c",)"
            R"("data":{"email": "ada@example.com", "id": 7}})");
}

TEST(message, build_body_escapes_strings) {
  const std::string event =
      "a\"b\\c\nd\te\x01"
      "f\x1f"
      "é";
  const event_view view{.event = event, .timestamp = "t", .resource_id = "r", .data = "null"};
  EXPECT_EQ(build_body(view), R"({"event":"a\"b\\c\nd\te\u0001f\u001fé","timestamp":"t",)"
                              R"("resource_id":"r","data":null})");
}

TEST(message, build_body_escapes_every_field_and_replaces_nul) {
  // NUL cannot come from a PostgreSQL text column; if it ever did, it becomes U+FFFD.
  const std::string nul_event("x\0y", 3);
  const event_view view{
      .event = nul_event, .timestamp = "\"ts\"", .resource_id = "\\id", .data = "1"};
  EXPECT_EQ(build_body(view),
            "{\"event\":\"x\xEF\xBF\xBDy\","
            R"("timestamp":"\"ts\"","resource_id":"\\id","data":1})");
}

TEST(message, build_body_inserts_data_verbatim) {
  const auto body_with = [](std::string_view data) {
    return build_body({.event = "e", .timestamp = "t", .resource_id = "r", .data = data});
  };
  const std::string prefix = R"({"event":"e","timestamp":"t","resource_id":"r","data":)";
  EXPECT_EQ(body_with(R"({"a": [1, 2]})"), prefix + R"({"a": [1, 2]}})");
  EXPECT_EQ(body_with("[1, \"two\", null]"), prefix + "[1, \"two\", null]}");
  EXPECT_EQ(body_with(R"("bare string with \"quotes\"")"),
            prefix + R"("bare string with \"quotes\""})");
  EXPECT_EQ(body_with("null"), prefix + "null}");
  EXPECT_EQ(body_with(""), prefix + "null}");
}

TEST(message, build_body_is_byte_identical_across_builds) {
  // Two independently allocated copies of the same event, as two attempts would read them.
  std::string first_data = R"({"nested": {"k": "v\u00e9"}, "n": 1.50})";
  std::string second_data = first_data;
  const std::string expected =
      R"({"event":"user.updated","timestamp":"2026-01-01T00:00:00Z","resource_id":"r1",)"
      R"("data":{"nested": {"k": "v\u00e9"}, "n": 1.50}})";
  const std::string first = build_body({.event = "user.updated",
                                        .timestamp = "2026-01-01T00:00:00Z",
                                        .resource_id = "r1",
                                        .data = first_data});
  const std::string second = build_body({.event = "user.updated",
                                         .timestamp = "2026-01-01T00:00:00Z",
                                         .resource_id = "r1",
                                         .data = second_data});
  EXPECT_EQ(first, expected);
  EXPECT_EQ(second, first);
}

// --- sign: outboxd's own headers --------------------------------------------------------------

TEST(message, sign_emits_headers_in_order_with_values) {
  const auto request = request_with_headers("");
  const signed_headers result = sign(request);
  ASSERT_TRUE(result.ok()) << result.error_code << ": " << result.error_detail;
  const std::string key(
      "\x31\xf2\x90\xf6\xbf\x06\x29\x8a\xab\x4f\x08\xd4\x3c\x3f\x08\x2c\xf6\x48"
      "\xa3\x62\xda\x2d\xa4\xb0",
      24);
  ASSERT_EQ(standard_webhooks_key(request.secret), std::optional<std::string>(key));
  const header_list expected = {
      {"Content-Type", "application/json"},
      {"User-Agent", "outboxd/" OUTBOXD_VERSION},
      {"webhook-id", "0b6c9f1e-6b1f-4c1e-9a53-6f2d2d1c7a10"},
      {"webhook-timestamp", "1700000000"},
      {"webhook-signature", standard_webhooks_signature(key, "0b6c9f1e-6b1f-4c1e-9a53-6f2d2d1c7a10",
                                                        1700000000, R"({"event":"user.created"})")},
      {"x-ferriskey-timestamp", "1700000000"},
      {"x-ferriskey-delivery-id", "0b6c9f1e-6b1f-4c1e-9a53-6f2d2d1c7a10"},
      // FerrisKey keys on the secret text itself, prefix included.
      {"x-ferriskey-signature", reference_hmac_hex("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                                   R"(1700000000.{"event":"user.created"})")},
  };
  EXPECT_EQ(to_list(result.headers), expected);
}

TEST(message, sign_matches_the_standard_webhooks_vector) {
  const signed_headers result = sign({.custom_headers_json = "{}",
                                      .secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                      .message_id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
                                      .timestamp = 1614265330,
                                      .body = R"({"test": 2432232314})"});
  ASSERT_TRUE(result.ok()) << result.error_detail;
  const std::string* signature = find_header(result, "webhook-signature");
  ASSERT_NE(signature, nullptr);
  EXPECT_EQ(*signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  const std::string* timestamp = find_header(result, "webhook-timestamp");
  ASSERT_NE(timestamp, nullptr);
  EXPECT_EQ(*timestamp, "1614265330");
}

// Key rotation: the current key's signature first, then the previous key's, space-separated.
TEST(message, sign_with_a_previous_secret_sends_both_signatures_new_first) {
  const std::string body = R"({"test": 2432232314})";
  const signed_headers result =
      sign({.custom_headers_json = "{}",
            .secret = "new-secret",
            .previous_secrets = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            .message_id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
            .timestamp = 1614265330,
            .body = body});
  ASSERT_TRUE(result.ok()) << result.error_detail;
  const std::string* signature = find_header(result, "webhook-signature");
  ASSERT_NE(signature, nullptr);
  EXPECT_EQ(*signature, "v1," +
                            reference_hmac_base64(
                                "new-secret", "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body) +
                            " v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  // FerrisKey's own header carries the current secret only.
  const std::string* ferriskey = find_header(result, "x-ferriskey-signature");
  ASSERT_NE(ferriskey, nullptr);
  EXPECT_EQ(*ferriskey, reference_hmac_hex("new-secret", "1614265330." + body));
}

TEST(message, standard_webhooks_signatures_joins_one_per_key_in_order) {
  const auto key = standard_webhooks_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.has_value());
  const std::vector<std::string> keys{*key, "other"};
  const std::string body = R"({"test": 2432232314})";
  EXPECT_EQ(standard_webhooks_signatures(keys, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1," +
                reference_hmac_base64("other", "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330." + body));
  EXPECT_EQ(standard_webhooks_signatures(std::span<const std::string>(keys).first(1),
                                         "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(message, a_previous_secret_that_is_unusable_or_the_same_adds_nothing) {
  const signed_headers result =
      sign({.custom_headers_json = "{}",
            .secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            .previous_secrets = {"whsec_!!", "", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            .message_id = "msg_p5jXN8AQM9LWM0D4loKWxJek",
            .timestamp = 1614265330,
            .body = R"({"test": 2432232314})"});
  ASSERT_TRUE(result.ok()) << result.error_detail;
  const std::string* signature = find_header(result, "webhook-signature");
  ASSERT_NE(signature, nullptr);
  EXPECT_EQ(*signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(message, sign_with_empty_or_empty_object_headers_adds_only_ours) {
  for (const std::string_view json : {"", "{}", " { } "}) {
    const signed_headers result = sign(request_with_headers(json));
    ASSERT_TRUE(result.ok()) << "headers " << json << ": " << result.error_detail;
    ASSERT_EQ(result.headers.size(), 8u) << "headers " << json;
    EXPECT_EQ(result.headers.front().name, "Content-Type") << "headers " << json;
  }
}

TEST(message, sign_uses_a_non_whsec_secret_as_raw_bytes) {
  const std::string secret = "3f9a0c4b7e21d58f6a0b9c3e7d1f2a4b5c6d7e8f90a1b2c3d4e5f60718293a4b";
  ASSERT_EQ(secret.size(), 64u);
  signing_request request = request_with_headers("");
  request.secret = secret;
  const signed_headers result = sign(request);
  ASSERT_TRUE(result.ok()) << result.error_detail;

  const std::string* standard = find_header(result, "webhook-signature");
  ASSERT_NE(standard, nullptr);
  EXPECT_EQ(*standard, "v1," + reference_hmac_base64(secret,
                                                     "0b6c9f1e-6b1f-4c1e-9a53-6f2d2d1c7a10."
                                                     R"(1700000000.{"event":"user.created"})"));

  const std::string* ferriskey = find_header(result, "x-ferriskey-signature");
  ASSERT_NE(ferriskey, nullptr);
  EXPECT_EQ(*ferriskey, reference_hmac_hex(secret, R"(1700000000.{"event":"user.created"})"));
}

TEST(message, sign_rejects_a_whsec_secret_that_is_not_base64) {
  signing_request request = request_with_headers("");
  request.secret = "whsec_not*base64!";
  const signed_headers result = sign(request);
  EXPECT_FALSE(result.ok());
  EXPECT_EQ(result.error_code, "invalid_secret");
  EXPECT_EQ(result.error_detail, "secret starts with whsec_ but is not valid base64");
  EXPECT_TRUE(result.headers.empty());
}

// --- sign: the webhook's custom headers -------------------------------------------------------

TEST(message, sign_keeps_custom_headers_first_in_their_order) {
  const signed_headers result = sign(request_with_headers(
      R"({"X-Zeta": "1", "Authorization": "Bearer abc", "X-Alpha": "a\tb é"})"));
  ASSERT_TRUE(result.ok()) << result.error_detail;
  ASSERT_GE(result.headers.size(), 4u);
  const header_list all = to_list(result.headers);
  const header_list first_three(all.begin(), all.begin() + 3);
  EXPECT_EQ(first_three,
            (header_list{{"X-Zeta", "1"}, {"Authorization", "Bearer abc"}, {"X-Alpha", "a\tb é"}}));
  EXPECT_EQ(result.headers[3].name, "Content-Type");
  EXPECT_EQ(result.headers.size(), 11u);
}

TEST(message, sign_drops_reserved_custom_headers_case_insensitively) {
  const signed_headers result = sign(request_with_headers(
      R"({"content-TYPE": "text/plain", "X-Keep": "yes", "Webhook-Signature": "v1,forged",)"
      R"( "Host": "evil.example", "Content-Length": "0", "TRANSFER-ENCODING": "chunked",)"
      R"( "X-FerrisKey-Signature": "00", "Expect": "100-continue", "te": "trailers"})"));
  ASSERT_TRUE(result.ok()) << result.error_detail;
  EXPECT_EQ(names_of(result), (std::vector<std::string>{
                                  "X-Keep", "Content-Type", "User-Agent", "webhook-id",
                                  "webhook-timestamp", "webhook-signature", "x-ferriskey-timestamp",
                                  "x-ferriskey-delivery-id", "x-ferriskey-signature"}));
  EXPECT_EQ(*find_header(result, "Content-Type"), "application/json");
  EXPECT_NE(*find_header(result, "webhook-signature"), "v1,forged");
  for (const auto& header : result.headers) {
    EXPECT_NE(header.value, "evil.example");
    EXPECT_NE(header.value, "chunked");
  }
}

TEST(message, sign_lets_a_custom_user_agent_replace_ours) {
  const signed_headers result =
      sign(request_with_headers(R"({"user-AGENT": "ferriskey-hooks/2", "X-A": "b"})"));
  ASSERT_TRUE(result.ok()) << result.error_detail;
  int user_agents = 0;
  for (const auto& header : result.headers) {
    if (header.name == "User-Agent" || header.name == "user-AGENT") ++user_agents;
  }
  EXPECT_EQ(user_agents, 1);
  EXPECT_EQ(to_list(result.headers).front(),
            (std::pair<std::string, std::string>{"user-AGENT", "ferriskey-hooks/2"}));
  EXPECT_EQ(find_header(result, "User-Agent"), nullptr);
  EXPECT_EQ(result.headers.size(), 9u);
}

TEST(message, sign_rejects_control_characters_in_values_without_echoing_them) {
  struct bad_value {
    std::string_view json;
    std::string_view secret_part;
  };
  const bad_value cases[] = {
      {R"({"X-Token": "s3cr3t-cr\rX-Injected: 1"})", "s3cr3t-cr"},
      {R"({"X-Token": "s3cr3t-lf\nX-Injected: 1"})", "s3cr3t-lf"},
      {R"({"X-Token": "s3cr3t-nul\u0000tail"})", "s3cr3t-nul"},
      {R"({"X-Token": "s3cr3t-bell\u0007"})", "s3cr3t-bell"},
      {R"({"X-Token": "s3cr3t-del\u007f"})", "s3cr3t-del"},
  };
  for (const auto& c : cases) {
    const signed_headers result = sign(request_with_headers(c.json));
    EXPECT_EQ(result.error_code, "invalid_header") << c.json;
    EXPECT_NE(result.error_detail.find("X-Token"), std::string::npos) << result.error_detail;
    EXPECT_EQ(result.error_detail.find(c.secret_part), std::string::npos) << result.error_detail;
    EXPECT_EQ(result.error_detail.find("Injected"), std::string::npos) << result.error_detail;
    EXPECT_TRUE(result.headers.empty()) << c.json;
  }
}

TEST(message, sign_rejects_names_that_are_not_tokens) {
  for (const std::string_view json :
       {R"({"Bad Name": "v"})", R"({"": "v"})", R"({"X-Ok": "v", "Bad:Name": "v"})",
        R"({"X-\u00e9": "v"})", R"({"X\nY": "v"})"}) {
    const signed_headers result = sign(request_with_headers(json));
    EXPECT_EQ(result.error_code, "invalid_header") << json;
    EXPECT_FALSE(result.error_detail.empty()) << json;
    EXPECT_TRUE(result.headers.empty()) << json;
  }
}

TEST(message, sign_does_not_echo_a_bad_name_past_its_first_bad_byte) {
  // A credential pasted as "Name: value" into the key must not reach the logs.
  const signed_headers result =
      sign(request_with_headers(R"({"Authorization: Bearer s3cr3t": ""})"));
  EXPECT_EQ(result.error_code, "invalid_header");
  EXPECT_NE(result.error_detail.find("Authorization"), std::string::npos) << result.error_detail;
  EXPECT_EQ(result.error_detail.find("s3cr3t"), std::string::npos) << result.error_detail;
}

TEST(message, sign_accepts_every_tchar_in_a_name) {
  const signed_headers result =
      sign(request_with_headers(R"({"!#$%&'*+-.^_`|~09AZaz": "v", "X-Empty": ""})"));
  ASSERT_TRUE(result.ok()) << result.error_detail;
  EXPECT_EQ(result.headers[0].name, "!#$%&'*+-.^_`|~09AZaz");
  EXPECT_EQ(result.headers[1].value, "");
}

TEST(message, sign_rejects_values_that_are_not_strings) {
  for (const std::string_view json :
       {R"({"X-Num": 5})", R"({"X-Num": {"nested": "s3cr3t"}})", R"({"X-Num": ["a"]})",
        R"({"X-Num": null})", R"({"X-Num": true})"}) {
    const signed_headers result = sign(request_with_headers(json));
    EXPECT_EQ(result.error_code, "invalid_header") << json;
    EXPECT_EQ(result.error_detail, R"(header "X-Num" is not a string)") << json;
  }
}

TEST(message, sign_reads_a_null_headers_column_as_no_custom_headers) {
  const signed_headers result = sign(request_with_headers("null"));
  ASSERT_TRUE(result.ok()) << result.error_detail;
  EXPECT_EQ(result.headers.front().name, "Content-Type");
}

TEST(message, sign_refuses_an_empty_signing_key) {
  for (const std::string_view secret : {"", "whsec_"}) {
    signing_request request = request_with_headers("{}");
    request.secret = secret;
    EXPECT_EQ(sign(request).error_code, "invalid_secret") << secret;
  }
}

TEST(message, sign_rejects_a_headers_column_that_is_not_an_object) {
  for (const std::string_view json : {"[]", R"("x")", "42"}) {
    const signed_headers result = sign(request_with_headers(json));
    EXPECT_EQ(result.error_code, "invalid_header") << json;
    EXPECT_EQ(result.error_detail, "headers column is not a JSON object") << json;
  }
  for (const std::string_view json : {R"({"X-A": "s3cr3t")", "{,}", "not json", R"({"a":"b"} x)"}) {
    const signed_headers result = sign(request_with_headers(json));
    EXPECT_EQ(result.error_code, "invalid_header") << json;
    EXPECT_TRUE(result.error_detail.starts_with("headers column is not valid JSON"))
        << result.error_detail;
    EXPECT_EQ(result.error_detail.find("s3cr3t"), std::string::npos) << result.error_detail;
  }
}

}  // namespace
}  // namespace outboxd
