// libFuzzer target: a webhook's headers column (a JSON object of name → value) as sign() reads
// it to build the request's headers. Written by realm administrators: untrusted.

#include <algorithm>

#include "fuzz_input.hpp"
#include "outboxd/http/field_syntax.hpp"
#include "outboxd/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto json = outboxd::fuzz::as_text(data, size);
  const auto signed_headers = outboxd::sign({.custom_headers_json = json,
                                             .secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                             .message_id = "6f1a0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b",
                                             .timestamp = 1'700'000'000,
                                             .body = R"({"event":"user.created"})"});
  if (!signed_headers.ok()) {
    OUTBOXD_FUZZ_CHECK(signed_headers.error_code == "invalid_header");
    OUTBOXD_FUZZ_CHECK(!signed_headers.error_detail.empty());
    // The detail goes to logs and the attempt record: no control byte from the column in it.
    OUTBOXD_FUZZ_CHECK(std::none_of(signed_headers.error_detail.begin(),
                                    signed_headers.error_detail.end(),
                                    outboxd::http::is_forbidden_in_value));
    return 0;
  }
  int signatures = 0;
  for (const auto& header : signed_headers.headers) {
    OUTBOXD_FUZZ_CHECK(outboxd::http::is_token(header.name));
    OUTBOXD_FUZZ_CHECK(std::none_of(header.value.begin(), header.value.end(),
                                    outboxd::http::is_forbidden_in_value));
    if (outboxd::http::equals_ignoring_case(header.name, "webhook-signature")) ++signatures;
    OUTBOXD_FUZZ_CHECK(!outboxd::http::equals_ignoring_case(header.name, "content-length"));
    OUTBOXD_FUZZ_CHECK(!outboxd::http::equals_ignoring_case(header.name, "transfer-encoding"));
    OUTBOXD_FUZZ_CHECK(!outboxd::http::equals_ignoring_case(header.name, "host"));
  }
  // The column can neither drop nor forge the signature.
  OUTBOXD_FUZZ_CHECK(signatures == 1);
  return 0;
}
