#include "outboxd/http/address_policy.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace outboxd::http
