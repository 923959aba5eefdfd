#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outboxd/http/endpoint_url.hpp"

namespace outboxd::http {

// Ports from first to last, both included.
struct port_range {
  std::uint16_t first = 1;
  std::uint16_t last = 65535;
  bool operator==(const port_range&) const = default;
};

// Why an endpoint is refused before any address is looked up: an attempt's error_code and
// error_detail.
struct endpoint_refusal {
  std::string_view code;  // kHttpsRequired or kPortNotAllowed
  std::string detail;
};
inline constexpr std::string_view kHttpsRequired = "https_required";
inline constexpr std::string_view kPortNotAllowed = "port_not_allowed";

// Which endpoints a webhook URL may name, whatever its host resolves to (that is
// address_policy's): with --https-only only https, with --allow-ports only the listed ports.
// The default permits http and https on any port.
class endpoint_policy {
 public:
  endpoint_policy() = default;
  endpoint_policy(bool https_only, std::vector<port_range> allowed_ports);

  // nullopt when permitted.
  std::optional<endpoint_refusal> refusal(const endpoint_url& url) const;
  bool https_only() const { return https_only_; }
  // Empty: any port.
  const std::vector<port_range>& allowed_ports() const { return allowed_ports_; }

  // "443,8443,9000-9099": ports and ranges separated by commas, spaces around them ignored;
  // "any" or "" for every port (an empty list). nullopt unless every item is a port from 1 to
  // 65535 or a range "first-last" with first <= last.
  static std::optional<std::vector<port_range>> parse_ports(std::string_view text);

 private:
  bool https_only_ = false;
  std::vector<port_range> allowed_ports_;
};

}  // namespace outboxd::http
