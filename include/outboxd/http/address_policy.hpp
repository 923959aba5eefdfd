#pragma once

#include <boost/asio/ip/address.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::http {

// An IPv4 or IPv6 network, e.g. 10.0.0.0/8 or fd00::/8.
struct cidr {
  boost::asio::ip::address network;
  int prefix_length = 0;

  bool contains(const boost::asio::ip::address& address) const;
  // nullopt unless "address/prefix" with a prefix in range and no host bits set.
  static std::optional<cidr> parse(std::string_view text);
};

// Which destination addresses a webhook may resolve to. Public unicast addresses are always
// permitted; loopback, private (RFC 1918, fc00::/7), link-local, CGNAT (100.64.0.0/10),
// unspecified, multicast and broadcast addresses only inside one of the allowed ranges
// (--allow-cidr). IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
class address_policy {
 public:
  address_policy() = default;
  explicit address_policy(std::vector<cidr> allowed);

  bool permits(const boost::asio::ip::address& address) const;
  const std::vector<cidr>& allowed() const { return allowed_; }

 private:
  std::vector<cidr> allowed_;
};

}  // namespace outboxd::http
