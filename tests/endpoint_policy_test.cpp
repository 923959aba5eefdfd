// --https-only and --allow-ports: the port list's syntax and what each refuses.
#include "outboxd/http/endpoint_policy.hpp"

#include <gtest/gtest.h>

namespace outboxd::http {
namespace {

endpoint_url url(const char* text) { return parse_url(text).value(); }

TEST(endpoint_policy, parses_ports_and_ranges) {
  using list = std::vector<port_range>;
  EXPECT_EQ(endpoint_policy::parse_ports("any"), list{});
  EXPECT_EQ(endpoint_policy::parse_ports(""), list{});
  EXPECT_EQ(endpoint_policy::parse_ports("443"), (list{{443, 443}}));
  EXPECT_EQ(endpoint_policy::parse_ports("1,65535"), (list{{1, 1}, {65535, 65535}}));
  EXPECT_EQ(endpoint_policy::parse_ports(" 443 , 8000-8999 "), (list{{443, 443}, {8000, 8999}}));
  EXPECT_EQ(endpoint_policy::parse_ports("80-80"), (list{{80, 80}}));
  for (const char* bad :
       {"0", "65536", "-1", "+80", "80-", "-80", "90-80", "1-2-3", "80,,443", "80,", ",80", "http",
        "443;8443", "8 0", "80 - 90", "0-80", "any,80", "123456"}) {
    EXPECT_FALSE(endpoint_policy::parse_ports(bad)) << "'" << bad << "'";
  }
}

TEST(endpoint_policy, permits_everything_by_default) {
  const endpoint_policy policy;
  EXPECT_FALSE(policy.refusal(url("http://example.com:1/")));
  EXPECT_FALSE(policy.refusal(url("https://example.com:65535/")));
}

TEST(endpoint_policy, https_only_refuses_http_on_any_port) {
  const endpoint_policy policy(true, {});
  EXPECT_FALSE(policy.refusal(url("https://example.com/")));
  EXPECT_FALSE(policy.refusal(url("https://example.com:80/")));
  for (const char* text : {"http://example.com/", "http://example.com:443/"}) {
    const auto refusal = policy.refusal(url(text));
    ASSERT_TRUE(refusal) << text;
    EXPECT_EQ(refusal->code, kHttpsRequired);
    EXPECT_NE(refusal->detail.find("--https-only"), std::string::npos);
  }
}

TEST(endpoint_policy, allowed_ports_refuse_every_other_port_at_the_range_edges) {
  const endpoint_policy policy(false, {{443, 443}, {8000, 8999}});
  for (const char* text : {"https://example.com/", "http://example.com:443/",
                           "http://example.com:8000/", "http://example.com:8999/"}) {
    EXPECT_FALSE(policy.refusal(url(text))) << text;
  }
  for (const char* text :
       {"http://example.com/", "http://example.com:442/", "http://example.com:444/",
        "http://example.com:7999/", "http://example.com:9000/"}) {
    const auto refusal = policy.refusal(url(text));
    ASSERT_TRUE(refusal) << text;
    EXPECT_EQ(refusal->code, kPortNotAllowed);
    EXPECT_NE(refusal->detail.find("443,8000-8999"), std::string::npos) << refusal->detail;
  }
  // Both rules: the scheme is judged first.
  const endpoint_policy both(true, {{443, 443}});
  EXPECT_EQ(both.refusal(url("http://example.com:80/"))->code, kHttpsRequired);
  EXPECT_EQ(both.refusal(url("https://example.com:8443/"))->code, kPortNotAllowed);
}

}  // namespace
}  // namespace outboxd::http
