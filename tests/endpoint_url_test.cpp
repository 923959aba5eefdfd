// Webhook URLs: what is accepted and how it is split, and each refusal with the problem it names.
#include "outboxd/http/endpoint_url.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace outboxd::http {
namespace {

struct accepted_case {
  const char* text;
  bool tls;
  const char* host;
  std::uint16_t port;
  const char* target;
};

TEST(endpoint_url, accepts_http_and_https_urls_and_splits_them) {
  const std::vector<accepted_case> cases = {
      {"http://example.com", false, "example.com", 80, "/"},
      {"https://example.com", true, "example.com", 443, "/"},
      {"HTTPS://Example.com/Hook", true, "example.com", 443, "/Hook"},  // host lower-cased
      {"HtTp://example.com:8080/a/b?c=d&e=f", false, "example.com", 8080, "/a/b?c=d&e=f"},
      {"http://example.com?x=1", false, "example.com", 80, "/?x=1"},
      {"http://example.com/p?", false, "example.com", 80, "/p?"},
      {"http://example.com/a%20b?q=%2F", false, "example.com", 80, "/a%20b?q=%2F"},  // kept encoded
      {"http://127.0.0.1:1/", false, "127.0.0.1", 1, "/"},
      {"http://127.0.0.1:65535/", false, "127.0.0.1", 65535, "/"},
      {"http://example.com:0080/", false, "example.com", 80, "/"},
      {"https://[::1]:8443/hook", true, "::1", 8443, "/hook"},
      {"https://[2001:DB8::1]/", true, "2001:db8::1", 443, "/"},
      {"http://[::ffff:10.0.0.1]", false, "::ffff:10.0.0.1", 80, "/"},
      {"http://my_host.internal-1.example./x", false, "my_host.internal-1.example.", 80, "/x"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const auto parsed = parse_endpoint_url(c.text);
    ASSERT_TRUE(parsed.url) << parsed.problem;
    EXPECT_TRUE(parsed.problem.empty());
    EXPECT_EQ(parsed.url->tls, c.tls);
    EXPECT_EQ(parsed.url->host, c.host);
    EXPECT_EQ(parsed.url->port, c.port);
    EXPECT_EQ(parsed.url->target, c.target);
  }
}

TEST(endpoint_url, never_sends_the_fragment) {
  for (const auto& [text, target] : std::vector<std::pair<const char*, const char*>>{
           {"http://example.com/p?q=1#frag", "/p?q=1"},
           {"http://example.com#frag", "/"},
           {"http://example.com/#", "/"},
           {"http://example.com/p#a?b", "/p"},
       }) {
    SCOPED_TRACE(text);
    const auto parsed = parse_url(text);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->target, target);
  }
}

struct refused_case {
  const char* text;
  const char* problem;  // a word the problem must contain
};

TEST(endpoint_url, refuses_each_broken_rule_and_says_which) {
  const std::vector<refused_case> cases = {
      {"", "empty"},
      // relative
      {"example.com/hook", "relative"},
      {"/hook", "relative"},
      {"//example.com/hook", "relative"},
      // schemes other than http and https
      {"ftp://example.com/", "scheme"},
      {"file:///etc/passwd", "scheme"},
      {"gopher://127.0.0.1:6379/_INFO", "scheme"},
      {"javascript:alert(1)", "scheme"},
      {"httpx://example.com/", "scheme"},
      // no host
      {"http:/example.com", "no host"},
      {"http:example.com", "no host"},
      {"http://", "no host"},
      {"http:///path", "no host"},
      {"http://:8080/", "no host"},
      {"http://?x=1", "no host"},
      // user-info
      {"http://user:pass@example.com/", "user-info"},
      {"http://user@example.com/", "user-info"},
      {"http://@example.com/", "user-info"},
      // bad ports
      {"http://example.com:0/", "port"},
      {"http://example.com:65536/", "port"},
      {"http://example.com:99999/", "port"},
      {"http://example.com:000080/", "port"},
      {"http://example.com:/", "port"},
      {"http://example.com:http/", "port"},
      {"http://::1/", "port"},
      // what follows the authority is not a path
      {"http://example.com:80a/", "followed by"},
      {"http://[::1]x/", "followed by"},
      {"http://example.com:1:2/", "followed by"},
      // hosts that are not a DNS name or an IP address
      {"http://ex%41mple.com/", "host"},
      {"http://exa!mple.com/", "host"},
      {"http://[v1.x]/", "host"},
      // not a URI at all
      {"http://[::1/", "valid URI"},
      {"http://[example.com]/", "valid URI"},
      {"http://[fe80::1%25eth0]/", "valid URI"},
      {"http://example.com/a|b", "valid URI"},
      {"http://example.com/?a[]=1", "valid URI"},
      // spaces, control characters, non-ASCII
      {"http://exa mple.com/", "space"},
      {"http://example.com/a b", "space"},
      {" http://example.com/", "space"},
      {"http://example.com/ ", "space"},
      {"http://example.com/\r\nX: 1", "control"},
      {"http://example.com/\t", "control"},
      {"http://example.com/\x7f", "control"},
      {"http://ex\xc3\xa4mple.com/", "non-ASCII"},
      {"http://example.com/\xc3\xa4", "non-ASCII"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    const auto parsed = parse_endpoint_url(c.text);
    ASSERT_FALSE(parsed.url);
    EXPECT_NE(parsed.problem.find(c.problem), std::string_view::npos) << parsed.problem;
    EXPECT_FALSE(parse_url(c.text));
  }
}

TEST(endpoint_url, a_refusal_never_quotes_the_url) {
  // A URL can carry a credential: what is wrong with it is said without repeating it.
  for (const char* text : {"http://admin:hunter2@example.com/", "ftp://hunter2.example.com/",
                           "http://example.com:hunter2/", "http://hunter2.example.com/ x"}) {
    const auto parsed = parse_endpoint_url(text);
    ASSERT_FALSE(parsed.url) << text;
    EXPECT_EQ(parsed.problem.find("hunter2"), std::string_view::npos) << parsed.problem;
  }
}

TEST(endpoint_url, key_names_scheme_host_and_port) {
  EXPECT_EQ(parse_url("http://example.com/a")->key(), "http://example.com:80");
  EXPECT_EQ(parse_url("HTTPS://example.com:8443/a")->key(), "https://example.com:8443");
  EXPECT_EQ(parse_url("https://[::1]/a")->key(), "https://[::1]:443");
  EXPECT_NE(parse_url("http://example.com/")->key(), parse_url("https://example.com:80/")->key());
}

TEST(endpoint_url, host_header_leaves_out_the_default_port_only) {
  EXPECT_EQ(parse_url("http://example.com/a")->host_header(), "example.com");
  EXPECT_EQ(parse_url("https://example.com:443/a")->host_header(), "example.com");
  EXPECT_EQ(parse_url("https://example.com:80/a")->host_header(), "example.com:80");
  EXPECT_EQ(parse_url("http://[::1]:8080/")->host_header(), "[::1]:8080");
  EXPECT_EQ(parse_url("http://[::1]/")->host_header(), "[::1]");
  EXPECT_EQ(parse_url("http://[::1]/")->bracketed_host(), "[::1]");
  EXPECT_EQ(parse_url("http://127.0.0.1/")->bracketed_host(), "127.0.0.1");
}

}  // namespace
}  // namespace outboxd::http
