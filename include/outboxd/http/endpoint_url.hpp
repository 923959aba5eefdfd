#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace outboxd::http {

// A webhook URL, parsed: an absolute RFC 3986 URI (Boost.URL) with scheme http or https, a host
// that is a DNS name, an IPv4 address or a bracketed IPv6 address, and an optional port from 1 to
// 65535. Refused: user-info (credentials belong in the webhook's headers, and a URL is shown in
// logs and the CLI), a percent-encoded or IPvFuture host, an IPv6 zone, anything the RFC does not
// allow (spaces, control characters, non-ASCII: IDN host names must be punycode). The fragment is
// parsed and dropped: it never leaves the client.
struct endpoint_url {
  bool tls = false;
  std::string host;  // lower-cased; IPv6 literals without brackets
  std::uint16_t port = 0;
  std::string target;  // path and query as written (still percent-encoded), "/" when empty
  // Idle connections are pooled per key: "https://host:port". The scheduler's limits and
  // breaker use the same key: an endpoint is scheme, host and port.
  std::string key() const;
  // The host as a URL spells it: an IPv6 literal in brackets.
  std::string bracketed_host() const;
  // The Host header: the host, and the port unless it is the scheme's default.
  std::string host_header() const;
};

// Either the URL, or why it was refused. `problem` names the rule that was broken without
// quoting the text (a URL can carry a password or a token), so it may be logged and recorded.
struct endpoint_url_parse {
  std::optional<endpoint_url> url;
  std::string_view problem;
};
endpoint_url_parse parse_endpoint_url(std::string_view text);

// A port as a URL writes it: at most 5 digits, no sign, 1 to 65535.
std::optional<std::uint16_t> parse_port(std::string_view text);

// The URL, or nullopt when parse_endpoint_url refuses it.
std::optional<endpoint_url> parse_url(std::string_view url);

}  // namespace outboxd::http
