#include "outboxd/http/endpoint_url.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace outboxd::http {
namespace {
namespace urls = boost::urls;

constexpr std::uint16_t kHttpPort = 80;
constexpr std::uint16_t kHttpsPort = 443;

std::uint16_t default_port(bool tls) { return tls ? kHttpsPort : kHttpPort; }

// Boost.URL refuses these too; checked first so the problem can say what is wrong.
bool is_space_control_or_non_ascii(char c) {
  const auto byte = static_cast<unsigned char>(c);
  return byte <= 0x20 || byte >= 0x7F;
}

// A DNS name or an IPv4 literal: letters, digits and the unreserved marks. Percent-encoding and
// sub-delimiters are valid in a reg-name but name no host a resolver knows: refused rather than
// guessed at.
bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

std::string lower_cased(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

endpoint_url_parse refused(std::string_view problem) {
  return {.url = std::nullopt, .problem = problem};
}

}  // namespace

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value == 0 || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::string endpoint_url::bracketed_host() const {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

std::string endpoint_url::key() const {
  return fmt::format("{}://{}:{}", tls ? "https" : "http", bracketed_host(), port);
}

std::string endpoint_url::host_header() const {
  if (port == default_port(tls)) return bracketed_host();
  return fmt::format("{}:{}", bracketed_host(), port);
}

endpoint_url_parse parse_endpoint_url(std::string_view text) {
  if (text.empty()) return refused("the URL is empty");
  if (std::any_of(text.begin(), text.end(), is_space_control_or_non_ascii)) {
    return refused(
        "the URL holds a space, a control character or a non-ASCII byte (percent-encode them; "
        "IDN host names as punycode)");
  }
  const auto parsed = urls::parse_uri(urls::string_view(text.data(), text.size()));
  if (!parsed) {
    if (urls::parse_relative_ref(urls::string_view(text.data(), text.size()))) {
      return refused("the URL is relative: it needs a scheme and a host, like https://host/path");
    }
    return refused("the URL is not a valid URI (RFC 3986)");
  }
  const urls::url_view& url = *parsed;

  endpoint_url result;
  if (url.scheme_id() == urls::scheme::http) {
    result.tls = false;
  } else if (url.scheme_id() == urls::scheme::https) {
    result.tls = true;
  } else {
    return refused("the scheme is not http or https");
  }
  if (!url.has_authority()) return refused("the URL has no host: it must start with http(s)://");
  if (url.has_userinfo()) {
    return refused("the URL has user-info (user:password@): credentials belong in the headers");
  }
  if (url.has_port()) {
    const auto port_text = url.port();
    const auto port = parse_port(std::string_view(port_text.data(), port_text.size()));
    if (!port) return refused("the port is not a number from 1 to 65535");
    result.port = *port;
  } else {
    result.port = default_port(result.tls);
  }

  // After the authority comes nothing, a path, a query or a fragment. (Boost.URL 1.81 lets
  // "host:80a/" through as port 80 and path "a/"; RFC 3986's path-abempty does not.)
  const auto path = url.encoded_path();
  if (!path.empty() && path.front() != '/') {
    return refused("the host and port are followed by something other than a path or a query");
  }

  const auto host = url.encoded_host_address();
  switch (url.host_type()) {
    case urls::host_type::name:
    case urls::host_type::ipv4:
      if (!std::all_of(host.begin(), host.end(), is_host_char)) {
        return refused(
            "the host holds characters other than letters, digits, '-', '.', '_' and '~'");
      }
      break;
    case urls::host_type::ipv6:
      // A zone (fe80::1%25eth0) names one of this host's interfaces: never a destination.
      if (host.find('%') != urls::string_view::npos) return refused("the IPv6 host has a zone");
      break;
    default:
      return refused("the host is not a DNS name or an IP address");
  }
  if (host.empty()) return refused("the URL has no host");
  // Host names are case-insensitive: one spelling, one connection pool.
  result.host = lower_cased(std::string_view(host.data(), host.size()));

  // The fragment is the client's own business: it stays out of the request target.
  result.target = path.empty() ? "/" : std::string(path.data(), path.size());
  if (url.has_query()) {
    const auto query = url.encoded_query();
    result.target += '?';
    result.target.append(query.data(), query.size());
  }
  return {.url = std::move(result), .problem = {}};
}

std::optional<endpoint_url> parse_url(std::string_view url) { return parse_endpoint_url(url).url; }

}  // namespace outboxd::http
