#include "outboxd/http/address_policy.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace outboxd::http {
namespace {
namespace ip = boost::asio::ip;

ip::address addr(const char* text) { return ip::make_address(text); }

cidr net(const char* text) {
  const auto parsed = cidr::parse(text);
  EXPECT_TRUE(parsed.has_value()) << text;
  return parsed.value_or(cidr{});
}

TEST(cidr, parses_v4_and_v6_networks) {
  const auto ten = cidr::parse("10.0.0.0/8");
  ASSERT_TRUE(ten);
  EXPECT_EQ(ten->network, addr("10.0.0.0"));
  EXPECT_EQ(ten->prefix_length, 8);

  const auto ula = cidr::parse("fd00::/8");
  ASSERT_TRUE(ula);
  EXPECT_EQ(ula->network, addr("fd00::"));
  EXPECT_EQ(ula->prefix_length, 8);

  const auto host = cidr::parse("127.0.0.1/32");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefix_length, 32);

  EXPECT_TRUE(cidr::parse("0.0.0.0/0"));
  EXPECT_TRUE(cidr::parse("::/0"));
  EXPECT_TRUE(cidr::parse("::1/128"));
  EXPECT_TRUE(cidr::parse("2001:db8::/32"));
  EXPECT_TRUE(cidr::parse("192.168.1.128/25"));
}

TEST(cidr, rejects_malformed_text) {
  for (const char* text : {
           "",
           "10.0.0.0",          // no prefix
           "10.0.0.0/",         // empty prefix
           "10.0.0.0/33",       // out of range
           "::/129",            // out of range
           "10.0.0.0/-1",       // sign
           "10.0.0.0/+8",       // sign
           "10.0.0.0/8 ",       // trailing space
           " 10.0.0.0/8",       // leading space
           "10.0.0.0/8x",       // trailing garbage
           "10.0.0.0/1000",     // too many digits
           "10.0.0.1/8",        // host bits set
           "192.168.1.1/24",    // host bits set
           "192.168.1.128/24",  // host bits set
           "fd00::1/8",         // host bits set
           "0.0.0.1/0",         // host bits set with prefix 0
           "::1/127",           // host bits set
           "10.0.0/8",          // not an address
           "example.com/8",     // not an address
           "256.0.0.0/8",       // not an address
           "/8",                // no address
           "fe80::%1/64",       // scoped
           "10.0.0.0/8/8",      // two slashes
       }) {
    EXPECT_FALSE(cidr::parse(text)) << "'" << text << "'";
  }
}

TEST(cidr, contains_respects_boundaries) {
  const auto block = net("10.0.0.0/8");
  EXPECT_TRUE(block.contains(addr("10.0.0.0")));
  EXPECT_TRUE(block.contains(addr("10.255.255.255")));
  EXPECT_FALSE(block.contains(addr("9.255.255.255")));
  EXPECT_FALSE(block.contains(addr("11.0.0.0")));

  const auto odd = net("100.64.0.0/10");
  EXPECT_TRUE(odd.contains(addr("100.64.0.0")));
  EXPECT_TRUE(odd.contains(addr("100.127.255.255")));
  EXPECT_FALSE(odd.contains(addr("100.63.255.255")));
  EXPECT_FALSE(odd.contains(addr("100.128.0.0")));

  const auto single = net("127.0.0.1/32");
  EXPECT_TRUE(single.contains(addr("127.0.0.1")));
  EXPECT_FALSE(single.contains(addr("127.0.0.2")));
  EXPECT_FALSE(single.contains(addr("127.0.0.0")));

  const auto everything_v4 = net("0.0.0.0/0");
  EXPECT_TRUE(everything_v4.contains(addr("0.0.0.0")));
  EXPECT_TRUE(everything_v4.contains(addr("255.255.255.255")));
  EXPECT_FALSE(everything_v4.contains(addr("::1")));

  const auto everything_v6 = net("::/0");
  EXPECT_TRUE(everything_v6.contains(addr("::")));
  EXPECT_TRUE(everything_v6.contains(addr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(everything_v6.contains(addr("1.2.3.4")));

  const auto loopback6 = net("::1/128");
  EXPECT_TRUE(loopback6.contains(addr("::1")));
  EXPECT_FALSE(loopback6.contains(addr("::2")));
  EXPECT_FALSE(loopback6.contains(addr("::")));

  const auto ula = net("fd00::/8");
  EXPECT_TRUE(ula.contains(addr("fd00::")));
  EXPECT_TRUE(ula.contains(addr("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(ula.contains(addr("fc00::")));
  EXPECT_FALSE(ula.contains(addr("fe00::")));
}

TEST(cidr, judges_mapped_v6_as_v4) {
  const auto block = net("10.0.0.0/8");
  EXPECT_TRUE(block.contains(addr("::ffff:10.1.2.3")));
  EXPECT_FALSE(block.contains(addr("::ffff:11.1.2.3")));
  // A network written in mapped form covers the plain IPv4 addresses too.
  const auto mapped = net("::ffff:10.0.0.0/104");
  EXPECT_TRUE(mapped.contains(addr("10.1.2.3")));
  EXPECT_TRUE(mapped.contains(addr("::ffff:10.1.2.3")));
  EXPECT_FALSE(mapped.contains(addr("11.1.2.3")));
}

TEST(address_policy, permits_public_unicast_always) {
  const address_policy policy;
  for (const char* text : {"1.1.1.1",
                           "8.8.8.8",
                           "9.255.255.255",
                           "11.0.0.0",
                           "100.63.255.255",
                           "100.128.0.0",
                           "126.255.255.255",
                           "128.0.0.0",
                           "169.253.255.255",
                           "169.255.0.0",
                           "172.15.255.255",
                           "172.32.0.0",
                           "192.167.255.255",
                           "192.169.0.0",
                           "192.0.1.0",
                           "198.17.255.255",
                           "198.20.0.0",
                           "223.255.255.255",
                           "2001:4860:4860::8888",
                           "2606:4700::1111",
                           "::ffff:8.8.8.8",
                           "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                           "fe00::1"}) {
    EXPECT_TRUE(policy.permits(addr(text))) << text;
  }
}

TEST(address_policy, refuses_non_public_by_default) {
  const address_policy policy;
  for (const char* text : {
           "0.0.0.0",
           "0.255.255.255",
           "10.0.0.0",
           "10.255.255.255",
           "100.64.0.0",
           "100.127.255.255",
           "127.0.0.0",
           "127.0.0.1",
           "127.255.255.255",
           "169.254.0.0",
           "169.254.169.254",
           "169.254.255.255",
           "172.16.0.0",
           "172.31.255.255",
           "192.0.0.0",
           "192.0.0.255",
           "192.168.0.0",
           "192.168.255.255",
           "198.18.0.0",
           "198.19.255.255",
           "224.0.0.0",
           "239.255.255.255",
           "240.0.0.0",
           "255.255.255.255",
           "::",
           "::1",
           "::127.0.0.1",
           "fc00::",
           "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "fe80::",
           "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
           "fec0::1",
           "ff02::1",
           "::ffff:127.0.0.1",
           "::ffff:10.0.0.1",
           "::ffff:169.254.169.254",
       }) {
    EXPECT_FALSE(policy.permits(addr(text))) << text;
  }
}

TEST(address_policy, permits_non_public_inside_allowed_ranges_only) {
  const address_policy policy({net("127.0.0.0/8"), net("10.1.0.0/16"), net("fd00::/8")});
  EXPECT_TRUE(policy.permits(addr("127.0.0.1")));
  EXPECT_TRUE(policy.permits(addr("127.255.255.255")));
  EXPECT_TRUE(policy.permits(addr("::ffff:127.0.0.1")));
  EXPECT_TRUE(policy.permits(addr("10.1.0.0")));
  EXPECT_TRUE(policy.permits(addr("10.1.255.255")));
  EXPECT_FALSE(policy.permits(addr("10.0.255.255")));
  EXPECT_FALSE(policy.permits(addr("10.2.0.0")));
  EXPECT_TRUE(policy.permits(addr("fd12::1")));
  EXPECT_FALSE(policy.permits(addr("fc00::1")));
  EXPECT_FALSE(policy.permits(addr("::1")));  // IPv6 loopback is not inside 127.0.0.0/8
  EXPECT_FALSE(policy.permits(addr("169.254.169.254")));
  EXPECT_TRUE(policy.permits(addr("8.8.8.8")));
  EXPECT_EQ(policy.allowed().size(), 3u);

  const address_policy everything({net("0.0.0.0/0"), net("::/0")});
  EXPECT_TRUE(everything.permits(addr("0.0.0.0")));
  EXPECT_TRUE(everything.permits(addr("255.255.255.255")));
  EXPECT_TRUE(everything.permits(addr("::")));
  EXPECT_TRUE(everything.permits(addr("ff02::1")));

  const address_policy one_host({net("192.168.1.5/32")});
  EXPECT_TRUE(one_host.permits(addr("192.168.1.5")));
  EXPECT_FALSE(one_host.permits(addr("192.168.1.4")));
  EXPECT_FALSE(one_host.permits(addr("192.168.1.6")));
}

// Every refused range, with an address inside it and one just outside it. When the neighbour
// outside is itself in another refused range (nested or adjacent ranges), it must be refused for
// that other range, not this one.
struct range_case {
  const char* range;
  const char* inside;
  const char* outside;
  bool outside_permitted = true;
};

const std::vector<range_case>& every_refused_range() {
  static const std::vector<range_case> cases = {
      {"0.0.0.0/8", "0.255.255.255", "1.0.0.0"},
      {"10.0.0.0/8", "10.255.255.255", "11.0.0.0"},
      {"100.64.0.0/10", "100.64.0.0", "100.63.255.255"},
      {"127.0.0.0/8", "127.255.255.255", "128.0.0.0"},
      {"169.254.0.0/16", "169.254.169.254", "169.255.0.0"},
      {"172.16.0.0/12", "172.31.255.255", "172.32.0.0"},
      {"192.0.0.0/24", "192.0.0.255", "192.0.1.0"},
      {"192.0.2.0/24", "192.0.2.0", "192.0.3.0"},
      {"192.88.99.0/24", "192.88.99.1", "192.88.98.255"},
      {"192.168.0.0/16", "192.168.0.0", "192.167.255.255"},
      {"198.18.0.0/15", "198.19.255.255", "198.20.0.0"},
      {"198.51.100.0/24", "198.51.100.255", "198.51.101.0"},
      {"203.0.113.0/24", "203.0.113.0", "203.0.112.255"},
      {"224.0.0.0/4", "224.0.0.0", "223.255.255.255"},
      {"255.255.255.255/32", "255.255.255.255", "255.255.255.254", false},  // in 240.0.0.0/4
      {"240.0.0.0/4", "240.0.0.0", "239.255.255.255", false},               // multicast
      {"::/128", "::", "::1", false},                                       // loopback
      {"::1/128", "::1", "::2", false},                                     // IPv4-compatible
      {"::/96", "::10.0.0.1", "::1:0:0"},
      {"64:ff9b:1::/48", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "64:ff9b:2::"},
      {"100::/64", "100::1", "ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"100:0:0:1::/64", "100:0:0:1:ffff:ffff:ffff:ffff", "100:0:0:2::"},
      {"2001::/23", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:200::"},
      {"2001:db8::/32", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"},
      {"3fff::/20", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"},
      {"5f00::/16", "5f00::1", "5f01::"},
      {"fc00::/7", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"fe80::/10", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       "fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"fec0::/10", "fec0::1", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},  // link-local
      {"ff00::/8", "ff02::1", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},   // site-local
  };
  return cases;
}

TEST(address_policy, the_table_lists_every_refused_range) {
  std::set<std::string> listed;
  for (const auto& c : every_refused_range()) listed.insert(c.range);
  std::set<std::string> refused;
  for (const auto& special : address_policy::special_ranges()) {
    refused.insert(std::string(special.text));
    // Each range's text is the network it checks.
    EXPECT_EQ(special.range.network, net(std::string(special.text).c_str()).network);
    EXPECT_FALSE(special.purpose.empty()) << special.text;
  }
  EXPECT_EQ(listed, refused);
  EXPECT_EQ(listed.size(), every_refused_range().size());  // no range twice
}

TEST(address_policy, refuses_inside_every_range_and_names_it_and_not_just_outside) {
  const address_policy policy;
  for (const auto& c : every_refused_range()) {
    SCOPED_TRACE(c.range);
    const auto inside = policy.refusal(addr(c.inside));
    ASSERT_TRUE(inside) << c.inside;
    ASSERT_NE(inside->range, nullptr);
    EXPECT_EQ(inside->range->text, c.range) << c.inside;
    EXPECT_NE(inside->reason.find(c.range), std::string::npos) << inside->reason;
    EXPECT_NE(inside->reason.find(inside->range->purpose), std::string::npos) << inside->reason;

    const auto outside = policy.refusal(addr(c.outside));
    if (c.outside_permitted) {
      EXPECT_FALSE(outside) << c.outside << ": " << outside->reason;
    } else {
      ASSERT_TRUE(outside) << c.outside;
      EXPECT_NE(outside->range->text, c.range) << c.outside;
    }
    // And every range opens up when it is allowed.
    const address_policy allowing({net(c.range)});
    EXPECT_TRUE(allowing.permits(addr(c.inside))) << c.inside;
  }
}

struct carried_case {
  const char* address;
  const char* refused_for;  // the range of the carried IPv4 address; "" when permitted
  const char* reason = "";  // part of the reason
};

TEST(address_policy, judges_ipv6_forms_carrying_ipv4_by_the_ipv4_address) {
  const address_policy policy;
  const std::vector<carried_case> cases = {
      // IPv4-mapped
      {"::ffff:8.8.8.8", ""},
      {"::ffff:10.0.0.1", "10.0.0.0/8", "private-use"},
      // NAT64, well-known prefix: the last 32 bits
      {"64:ff9b::8.8.8.8", ""},
      {"64:ff9b::10.0.0.1", "10.0.0.0/8", "NAT64 64:ff9b::/96 carrying 10.0.0.1, private-use"},
      {"64:ff9b::127.0.0.1", "127.0.0.0/8", "carrying 127.0.0.1"},
      {"64:ff9b::169.254.169.254", "169.254.0.0/16", "carrying 169.254.169.254"},
      {"64:ff9b::198.18.0.1", "198.18.0.0/15", "carrying 198.18.0.1"},
      // just outside the /96: not NAT64, nothing carried
      {"64:ff9b::1:a00:1", ""},
      // 6to4: bits 16-47
      {"2002:808:808::1", ""},
      {"2002:a00:1::", "10.0.0.0/8", "6to4 2002::/16 carrying 10.0.0.1"},
      {"2002:7f00:1:ffff::1", "127.0.0.0/8", "carrying 127.0.0.1"},
      {"2002:c0a8:101::", "192.168.0.0/16", "carrying 192.168.1.1"},
      {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ""},  // just below 2002::/16
      {"2003::", ""},                                   // just above
      // Teredo: server at bits 32-63; client inverted in the last 32 bits. RFC 4380's example
      // has server 65.54.227.120 and client 192.0.2.45.
      {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", ""},  // client 8.8.8.8
      {"2001:0:4136:e378:8000:63bf:3fff:fdd2", "192.0.2.0/24",
       "Teredo 2001::/32 carrying 192.0.2.45, documentation"},
      {"2001:0:a00:1:8000:63bf:f7f7:f7f7", "10.0.0.0/8", "carrying 10.0.0.1"},        // server
      {"2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.0/8", "carrying 127.0.0.1"},  // client
      // just outside Teredo, still in the IETF protocol assignments
      {"2001:1::", "2001::/23", "IETF protocol assignments"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.address);
    const auto refusal = policy.refusal(addr(c.address));
    if (std::string(c.refused_for).empty()) {
      EXPECT_FALSE(refusal) << refusal->reason;
      continue;
    }
    ASSERT_TRUE(refusal);
    EXPECT_EQ(refusal->range->text, c.refused_for);
    EXPECT_NE(refusal->reason.find(c.reason), std::string::npos) << refusal->reason;
  }
}

TEST(address_policy, a_carried_address_is_permitted_when_it_or_the_ipv6_range_is_allowed) {
  // The carried IPv4 address is judged by the whole policy, allowed ranges included.
  const address_policy ten({net("10.0.0.0/8")});
  EXPECT_TRUE(ten.permits(addr("64:ff9b::10.1.2.3")));
  EXPECT_TRUE(ten.permits(addr("2002:a01:203::1")));
  EXPECT_TRUE(ten.permits(addr("2001:0:a01:203:8000:63bf:f7f7:f7f7")));
  EXPECT_FALSE(ten.permits(addr("64:ff9b::127.0.0.1")));
  // Teredo needs both of its addresses permitted.
  EXPECT_FALSE(ten.permits(addr("2001:0:a01:203:8000:63bf:80ff:fffe")));

  // Allowing the IPv6 range itself permits whatever it carries, and only there.
  const address_policy nat64({net("64:ff9b::/96")});
  EXPECT_TRUE(nat64.permits(addr("64:ff9b::127.0.0.1")));
  EXPECT_FALSE(nat64.permits(addr("127.0.0.1")));
  EXPECT_FALSE(nat64.permits(addr("2002:7f00:1::")));
  const address_policy six_to_four({net("2002::/16")});
  EXPECT_TRUE(six_to_four.permits(addr("2002:7f00:1::")));
  const address_policy teredo({net("2001::/32")});
  EXPECT_TRUE(teredo.permits(addr("2001:0:4136:e378:8000:63bf:3fff:fdd2")));
  EXPECT_FALSE(teredo.permits(addr("2001:1::")));
}

}  // namespace
}  // namespace outboxd::http
