#include "outboxd/http/address_policy.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>

namespace outboxd::http {
namespace {
namespace ip = boost::asio::ip;

// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) reach the IPv4 host they carry, so every check
// looks through them.
ip::address unmapped(const ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, address.to_v6());
  }
  return address;
}

// A network in a form where v4 and v6 are compared byte by byte: the mapped form of an IPv4
// network (::ffff:0:0/96 and longer) becomes the IPv4 network.
struct normalized_network {
  ip::address network;
  int prefix_length;
};

normalized_network normalize(const ip::address& network, int prefix_length) {
  constexpr int kMappedPrefix = 96;
  if (network.is_v6() && network.to_v6().is_v4_mapped() && prefix_length >= kMappedPrefix) {
    return {ip::make_address_v4(ip::v4_mapped, network.to_v6()), prefix_length - kMappedPrefix};
  }
  return {network, prefix_length};
}

template <std::size_t N>
bool prefix_matches(const std::array<unsigned char, N>& network,
                    const std::array<unsigned char, N>& address, int prefix_length) {
  int remaining = prefix_length;
  for (std::size_t i = 0; i < N && remaining > 0; ++i, remaining -= 8) {
    const unsigned mask = remaining >= 8 ? 0xFFu : (0xFFu << (8 - remaining)) & 0xFFu;
    if ((network[i] & mask) != (address[i] & mask)) return false;
  }
  return true;
}

template <std::size_t N>
bool host_bits_clear(const std::array<unsigned char, N>& network, int prefix_length) {
  for (std::size_t i = 0; i < N; ++i) {
    const int bit_start = static_cast<int>(i) * 8;
    if (bit_start + 8 <= prefix_length) continue;
    const int kept = std::max(0, prefix_length - bit_start);
    const unsigned host_mask = 0xFFu >> kept;
    if ((network[i] & host_mask) != 0) return false;
  }
  return true;
}

cidr must_parse(std::string_view text) {
  // Only called on the literals below; a typo there is a programming error caught by the tests.
  auto parsed = cidr::parse(text);
  return parsed ? *parsed : cidr{};
}

special_range make_range(std::string_view text, std::string_view purpose) {
  return {.text = text, .purpose = purpose, .range = must_parse(text)};
}

// Where in an IPv6 address a carried IPv4 address is, and whether its bits are inverted.
struct carried_ipv4 {
  std::size_t offset;
  bool inverted;
};
struct ipv4_carrier {
  std::string_view text;
  std::string_view purpose;
  cidr range;
  std::vector<carried_ipv4> carried;
};

const std::vector<ipv4_carrier>& ipv4_carriers() {
  static const std::vector<ipv4_carrier> carriers = {
      // RFC 6052: the well-known prefix holds the IPv4 address in its last 32 bits.
      {"64:ff9b::/96", "NAT64", must_parse("64:ff9b::/96"), {{12, false}}},
      // RFC 3056: 2002:AABB:CCDD::/48 is the 6to4 site of IPv4 AA.BB.CC.DD.
      {"2002::/16", "6to4", must_parse("2002::/16"), {{2, false}}},
      // RFC 4380: 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC, server S, client C with every bit
      // inverted.
      {"2001::/32", "Teredo", must_parse("2001::/32"), {{4, false}, {12, true}}},
  };
  return carriers;
}

ip::address_v4 ipv4_at(const ip::address_v6::bytes_type& bytes, carried_ipv4 where) {
  ip::address_v4::bytes_type v4{};
  for (std::size_t i = 0; i < v4.size(); ++i) {
    const auto byte = bytes[where.offset + i];
    v4[i] = where.inverted ? static_cast<unsigned char>(~byte) : byte;
  }
  return ip::address_v4(v4);
}

}  // namespace

bool cidr::contains(const ip::address& address) const {
  const auto net = normalize(network, prefix_length);
  const auto candidate = unmapped(address);
  if (net.network.is_v4() != candidate.is_v4()) return false;
  if (net.network.is_v4()) {
    return prefix_matches(net.network.to_v4().to_bytes(), candidate.to_v4().to_bytes(),
                          net.prefix_length);
  }
  return prefix_matches(net.network.to_v6().to_bytes(), candidate.to_v6().to_bytes(),
                        net.prefix_length);
}

std::optional<cidr> cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto address_text = text.substr(0, slash);
  const auto prefix_text = text.substr(slash + 1);
  // Digits only: from_chars alone would accept "8abc" as 8 and we want no sign, no spaces.
  if (prefix_text.empty() || prefix_text.size() > 3) return std::nullopt;
  if (!std::all_of(prefix_text.begin(), prefix_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int prefix = 0;
  std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);

  boost::system::error_code ec;
  const std::string address_string(address_text);
  const auto address = ip::make_address(address_string, ec);
  if (ec) return std::nullopt;
  if (address.is_v4()) {
    if (prefix > 32) return std::nullopt;
    if (!host_bits_clear(address.to_v4().to_bytes(), prefix)) return std::nullopt;
  } else {
    // A scope (fe80::1%eth0) names an interface, not a network.
    if (address.to_v6().scope_id() != 0) return std::nullopt;
    if (prefix > 128) return std::nullopt;
    if (!host_bits_clear(address.to_v6().to_bytes(), prefix)) return std::nullopt;
  }
  return cidr{.network = address, .prefix_length = prefix};
}

// Everything that is not globally reachable unicast: the entries of the IANA special-purpose
// registries marked not globally reachable, multicast and reserved space. These are permitted
// only inside an allowed range, so a webhook cannot be pointed at the daemon's own host, its
// network or cloud metadata services.
const std::vector<special_range>& address_policy::special_ranges() {
  static const std::vector<special_range> ranges = {
      make_range("0.0.0.0/8", "\"this network\" (0.0.0.0 reaches the local host)"),
      make_range("10.0.0.0/8", "private-use"),
      make_range("100.64.0.0/10", "shared address space (carrier-grade NAT)"),
      make_range("127.0.0.0/8", "loopback"),
      make_range("169.254.0.0/16", "link-local (cloud metadata services)"),
      make_range("172.16.0.0/12", "private-use"),
      make_range("192.0.0.0/24", "IETF protocol assignments"),
      make_range("192.0.2.0/24", "documentation (TEST-NET-1)"),
      make_range("192.88.99.0/24", "deprecated 6to4 relay anycast"),
      make_range("192.168.0.0/16", "private-use"),
      make_range("198.18.0.0/15", "benchmarking"),
      make_range("198.51.100.0/24", "documentation (TEST-NET-2)"),
      make_range("203.0.113.0/24", "documentation (TEST-NET-3)"),
      make_range("224.0.0.0/4", "multicast"),
      make_range("255.255.255.255/32", "limited broadcast"),
      make_range("240.0.0.0/4", "reserved"),
      make_range("::/128", "unspecified"),
      make_range("::1/128", "loopback"),
      make_range("::/96", "deprecated IPv4-compatible"),
      make_range("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
      make_range("100::/64", "discard-only"),
      make_range("100:0:0:1::/64", "dummy prefix"),
      make_range("2001::/23", "IETF protocol assignments"),
      make_range("2001:db8::/32", "documentation"),
      make_range("3fff::/20", "documentation"),
      make_range("5f00::/16", "segment routing (SRv6) SIDs"),
      make_range("fc00::/7", "unique-local"),
      make_range("fe80::/10", "link-local"),
      make_range("fec0::/10", "deprecated site-local"),
      make_range("ff00::/8", "multicast"),
  };
  return ranges;
}

address_policy::address_policy(std::vector<cidr> allowed) : allowed_(std::move(allowed)) {}

bool address_policy::is_allowed(const ip::address& address) const {
  return std::any_of(allowed_.begin(), allowed_.end(),
                     [&](const cidr& range) { return range.contains(address); });
}

std::optional<address_refusal> address_policy::refusal(const ip::address& address) const {
  if (is_allowed(address)) return std::nullopt;
  const auto candidate = unmapped(address);
  if (candidate.is_v6()) {
    // A form carrying IPv4 reaches, through a translator or relay, the IPv4 host it names: it is
    // refused exactly when that host would be. (Teredo's 2001::/32 lies inside 2001::/23, so
    // this comes first.)
    for (const auto& carrier : ipv4_carriers()) {
      if (!carrier.range.contains(candidate)) continue;
      const auto bytes = candidate.to_v6().to_bytes();
      for (const auto where : carrier.carried) {
        const auto ipv4 = ipv4_at(bytes, where);
        if (auto inner = refusal(ipv4)) {
          inner->reason = fmt::format("{} {} carrying {}, {}", carrier.purpose, carrier.text,
                                      ipv4.to_string(), inner->reason);
          return inner;
        }
      }
      return std::nullopt;
    }
  }
  for (const auto& special : special_ranges()) {
    if (special.range.contains(candidate)) {
      return address_refusal{.range = &special,
                             .reason = fmt::format("{} {}", special.purpose, special.text)};
    }
  }
  return std::nullopt;
}

}  // namespace outboxd::http
