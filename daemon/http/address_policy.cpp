#include "outboxd/http/address_policy.hpp"

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

// Everything that is not public unicast. These are permitted only inside an allowed range, so a
// webhook cannot be pointed at the daemon's own host, its network or cloud metadata services.
const std::vector<cidr>& not_public_ranges() {
  static const std::vector<cidr> ranges = [] {
    std::vector<cidr> list;
    for (const std::string_view text : {
             "0.0.0.0/8",       // "this network", 0.0.0.0 reaches the local host
             "10.0.0.0/8",      // RFC 1918
             "100.64.0.0/10",   // CGNAT (RFC 6598)
             "127.0.0.0/8",     // loopback
             "169.254.0.0/16",  // link-local, includes cloud metadata 169.254.169.254
             "172.16.0.0/12",   // RFC 1918
             "192.0.0.0/24",    // IETF protocol assignments
             "192.168.0.0/16",  // RFC 1918
             "198.18.0.0/15",   // benchmarking
             "224.0.0.0/4",     // multicast
             "240.0.0.0/4",     // reserved, includes broadcast 255.255.255.255
             "::/128",          // unspecified
             "::1/128",         // loopback
             "::/96",           // deprecated IPv4-compatible addresses (::a.b.c.d)
             "fc00::/7",        // unique local
             "fe80::/10",       // link-local
             "fec0::/10",       // deprecated site-local
             "ff00::/8",        // multicast
         }) {
      list.push_back(must_parse(text));
    }
    return list;
  }();
  return ranges;
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

address_policy::address_policy(std::vector<cidr> allowed) : allowed_(std::move(allowed)) {}

bool address_policy::permits(const ip::address& address) const {
  const auto& special = not_public_ranges();
  const bool is_public = std::none_of(special.begin(), special.end(),
                                      [&](const cidr& range) { return range.contains(address); });
  if (is_public) return true;
  return std::any_of(allowed_.begin(), allowed_.end(),
                     [&](const cidr& range) { return range.contains(address); });
}

}  // namespace outboxd::http
