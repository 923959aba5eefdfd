// libFuzzer target: a webhook's endpoint URL as the deliverer parses it (http::parse_url). The
// IAM's realm administrators write these; nothing about them is trusted.

#include <algorithm>
#include <cctype>

#include "fuzz_input.hpp"
#include "outboxd/http/client.hpp"

namespace {

bool is_control_or_space(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte <= 0x20 || byte == 0x7F;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto text = outboxd::fuzz::as_text(data, size);
  const auto url = outboxd::http::parse_url(text);
  if (!url) return 0;

  OUTBOXD_FUZZ_CHECK(!url->host.empty());
  OUTBOXD_FUZZ_CHECK(url->port != 0);
  OUTBOXD_FUZZ_CHECK(!url->target.empty() && url->target.front() == '/');
  // Whatever reaches the request line and the Host header holds no space or control byte: one
  // would split the request.
  OUTBOXD_FUZZ_CHECK(std::none_of(url->host.begin(), url->host.end(), is_control_or_space));
  OUTBOXD_FUZZ_CHECK(std::none_of(url->target.begin(), url->target.end(), is_control_or_space));
  OUTBOXD_FUZZ_CHECK(url->target.find('#') == std::string::npos);
  // One spelling per host, so one connection pool and one circuit breaker per endpoint.
  OUTBOXD_FUZZ_CHECK(std::none_of(url->host.begin(), url->host.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) != 0;
  }));

  // The endpoint key names the same endpoint when read back.
  const auto again = outboxd::http::parse_url(url->key());
  OUTBOXD_FUZZ_CHECK(again.has_value());
  OUTBOXD_FUZZ_CHECK(again->tls == url->tls);
  OUTBOXD_FUZZ_CHECK(again->host == url->host);
  OUTBOXD_FUZZ_CHECK(again->port == url->port);
  OUTBOXD_FUZZ_CHECK(again->key() == url->key());
  return 0;
}
