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

// One special-purpose range of the IANA IPv4 and IPv6 Special-Purpose Address Registries (or
// multicast, or reserved space) that is not globally reachable: no webhook receiver lives there.
struct special_range {
  std::string_view text;     // "10.0.0.0/8"
  std::string_view purpose;  // "private-use", "loopback", ...
  cidr range;
};

// Why an address is refused: the special-purpose range it is in or, for an IPv6 form carrying
// an IPv4 address, the range of the address it carries.
struct address_refusal {
  const special_range* range = nullptr;
  // "private-use 10.0.0.0/8"; for a carried address "NAT64 64:ff9b::/96 carrying 10.0.0.1,
  // private-use 10.0.0.0/8".
  std::string reason;
};

// Which destination addresses a webhook may resolve to. Globally reachable unicast addresses are
// always permitted; the special ranges (special_ranges()) only inside one of the allowed ranges
// (--allow-cidr). An IPv6 address that carries an IPv4 address is judged as what it carries
// unless an allowed range holds the IPv6 address itself: IPv4-mapped (::ffff:a.b.c.d), NAT64
// (64:ff9b::/96, the last 32 bits), 6to4 (2002::/16, bits 16-47) and Teredo (2001::/32: the
// server at bits 32-63 and the client, inverted, in the last 32 bits; both must be permitted).
class address_policy {
 public:
  address_policy() = default;
  explicit address_policy(std::vector<cidr> allowed);

  bool permits(const boost::asio::ip::address& address) const { return !refusal(address); }
  // nullopt when permitted.
  std::optional<address_refusal> refusal(const boost::asio::ip::address& address) const;
  const std::vector<cidr>& allowed() const { return allowed_; }

  // Every range refused unless allowed, most specific first (a range nested in another is listed
  // before it, so a refusal names the narrower purpose).
  static const std::vector<special_range>& special_ranges();

 private:
  bool is_allowed(const boost::asio::ip::address& address) const;
  std::vector<cidr> allowed_;
};

}  // namespace outboxd::http
