#include "outboxd/http/endpoint_policy.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace outboxd::http {
namespace {

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

std::string describe(const std::vector<port_range>& ports) {
  std::string out;
  for (const auto& range : ports) {
    if (!out.empty()) out += ',';
    out += range.first == range.last ? fmt::format("{}", range.first)
                                     : fmt::format("{}-{}", range.first, range.last);
  }
  return out;
}

}  // namespace

endpoint_policy::endpoint_policy(bool https_only, std::vector<port_range> allowed_ports)
    : https_only_(https_only), allowed_ports_(std::move(allowed_ports)) {}

std::optional<endpoint_refusal> endpoint_policy::refusal(const endpoint_url& url) const {
  if (https_only_ && !url.tls) {
    return endpoint_refusal{.code = kHttpsRequired,
                            .detail = "the endpoint is http and --https-only is set"};
  }
  if (!allowed_ports_.empty() &&
      std::none_of(allowed_ports_.begin(), allowed_ports_.end(), [&](const port_range& range) {
        return url.port >= range.first && url.port <= range.last;
      })) {
    return endpoint_refusal{.code = kPortNotAllowed,
                            .detail = fmt::format("port {} is not in --allow-ports {}", url.port,
                                                  describe(allowed_ports_))};
  }
  return std::nullopt;
}

std::optional<std::vector<port_range>> endpoint_policy::parse_ports(std::string_view text) {
  std::vector<port_range> ports;
  if (trimmed(text).empty() || trimmed(text) == "any") return ports;
  while (true) {
    const auto comma = text.find(',');
    const auto item = trimmed(text.substr(0, comma));
    const auto dash = item.find('-');
    const auto first = parse_port(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : parse_port(item.substr(dash + 1));
    if (!first || !last || *first > *last) return std::nullopt;
    ports.push_back({*first, *last});
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return ports;
}

}  // namespace outboxd::http
