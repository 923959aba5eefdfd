// TLS to webhook receivers: a local receiver whose certificate comes from a CA made in the test,
// and each way a certificate can be wrong, with the attempt error code it must produce; --ca-file,
// client certificates for mTLS receivers, and the TLS 1.2 minimum.
#include <gtest/gtest.h>

#include "outboxd/metrics.hpp"
#include "outboxd/pg/transport.hpp"
#include "support/post_harness.hpp"
#include "support/receiver.hpp"
#include "support/test_pki.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

constexpr auto kDay = std::chrono::seconds(24 * 3600);

// A receiver serving `identity`, and a client trusting `trusted` (PEM; empty: the system's CAs
// only), posting to it by IP address and by name.
struct tls_case {
  receiver server;
  std::optional<temp_file> ca;
  post_harness client;

  tls_case(const pem_identity& identity, const std::string& trusted,
           const http::client_options& base = local_client_options())
      : server({.tls = true, .identity = identity}),
        ca(trusted_file(trusted)),
        client(with(base)) {}

  http::response post_by_address() { return post("https://127.0.0.1:"); }
  http::response post_by_name() { return post("https://localhost:"); }

 private:
  static std::optional<temp_file> trusted_file(const std::string& pem) {
    if (pem.empty()) return std::nullopt;
    return std::make_optional<temp_file>(pem, "outboxd-test-ca");
  }
  http::client_options with(http::client_options options) const {
    if (ca) options.ca_file = ca->path();
    return options;
  }
  http::response post(const std::string& prefix) {
    const auto req = make_request(prefix + std::to_string(server.port()) + "/hook");
    return client.post(req);
  }
};

void expect_refused(const http::response& res, const std::string& code, std::string_view says) {
  EXPECT_EQ(res.status, 0);
  EXPECT_EQ(res.error_code, code) << res.error_detail;
  EXPECT_NE(res.error_detail.find(says), std::string::npos) << res.error_detail;
  EXPECT_EQ(classify_attempt_outcome(res.status, res.error_code), attempt_class::tls_error);
}

TEST(tls, a_certificate_from_the_ca_file_is_accepted_by_address_and_by_name) {
  const test_authority ca;
  tls_case c(ca.issue(), ca.certificate_pem());
  const auto by_address = c.post_by_address();
  EXPECT_EQ(by_address.error_code, "") << by_address.error_detail;
  EXPECT_EQ(by_address.status, 200);
  const auto by_name = c.post_by_name();
  EXPECT_EQ(by_name.error_code, "") << by_name.error_detail;
  EXPECT_EQ(by_name.status, 200);
  EXPECT_EQ(c.server.count(), 2u);
  EXPECT_EQ(c.server.requests().front().client_subject, "");  // none was asked for
}

TEST(tls, the_same_certificate_without_the_ca_file_is_untrusted) {
  const test_authority ca;
  tls_case c(ca.issue(), "");
  expect_refused(c.post_by_address(), "tls_untrusted", "unable to get local issuer certificate");
  EXPECT_EQ(c.server.count(), 0u);
}

TEST(tls, an_expired_certificate_is_refused) {
  const test_authority ca;
  tls_case c(ca.issue({.valid_from = -2 * kDay, .valid_until = -kDay}), ca.certificate_pem());
  expect_refused(c.post_by_address(), "tls_certificate_expired", "certificate has expired");
  EXPECT_EQ(c.server.count(), 0u);
}

TEST(tls, a_certificate_not_yet_valid_is_refused_like_an_expired_one) {
  const test_authority ca;
  tls_case c(ca.issue({.valid_from = kDay, .valid_until = 2 * kDay}), ca.certificate_pem());
  expect_refused(c.post_by_address(), "tls_certificate_expired", "not yet valid");
}

TEST(tls, a_certificate_for_another_host_is_refused_for_names_and_addresses) {
  const test_authority ca;
  tls_case c(ca.issue({.common_name = "localhost",  // the CN is not consulted when SANs exist
                       .subject_alt_names = "DNS:other.example,IP:127.0.0.2"}),
             ca.certificate_pem());
  expect_refused(c.post_by_address(), "tls_hostname_mismatch", "IP address mismatch");
  expect_refused(c.post_by_name(), "tls_hostname_mismatch", "hostname mismatch");
  EXPECT_EQ(c.server.count(), 0u);
}

TEST(tls, a_self_signed_certificate_is_untrusted) {
  const auto identity = self_signed();
  tls_case c(identity, "");
  expect_refused(c.post_by_address(), "tls_untrusted", "self-signed certificate");
  EXPECT_EQ(c.server.count(), 0u);
}

TEST(tls, a_certificate_from_an_unknown_ca_is_untrusted) {
  const test_authority ca;
  const test_authority other("another test CA");
  tls_case c(ca.issue(), other.certificate_pem());  // trusts a CA, just not this one
  expect_refused(c.post_by_address(), "tls_untrusted", "unable to get local issuer certificate");
  EXPECT_EQ(c.server.count(), 0u);
}

TEST(tls, a_server_offering_only_tls_1_1_is_refused) {
  const test_authority ca;
  receiver server({.tls = true, .identity = ca.issue(), .tls_1_1_only = true});
  const temp_file trusted(ca.certificate_pem());
  auto options = local_client_options();
  options.ca_file = trusted.path();
  post_harness client(options);
  const auto req = make_request(server.url());
  const auto res = client.post(req);
  EXPECT_EQ(res.error_code, "tls_protocol_version") << res.error_detail;
  EXPECT_EQ(server.count(), 0u);
}

// An mTLS receiver: it asks for a client certificate from `client_ca` and refuses the connection
// without one.
struct mtls_case {
  test_authority server_ca{"server CA"};
  test_authority client_ca{"client CA"};
  temp_file trusted{server_ca.certificate_pem()};
  receiver server{
      {.tls = true, .identity = server_ca.issue(), .client_ca = client_ca.certificate_pem()}};

  http::response post_with(const std::optional<pem_identity>& identity) {
    auto options = local_client_options();
    options.ca_file = trusted.path();
    std::optional<temp_file> cert;
    std::optional<temp_file> key;
    if (identity) {
      cert.emplace(identity->certificate, "outboxd-test-client-cert");
      key.emplace(identity->key, "outboxd-test-client-key");
      options.client_cert_file = cert->path();
      options.client_key_file = key->path();
    }
    post_harness client(options);
    EXPECT_EQ(client.client().tls_setup_error(), "");
    const auto req = make_request(server.url());
    return client.post(req);
  }
};

TEST(tls, a_client_certificate_is_presented_to_an_mtls_receiver) {
  mtls_case c;
  const auto res = c.post_with(c.client_ca.issue(
      {.common_name = "outboxd-client", .subject_alt_names = "", .client = true}));
  EXPECT_EQ(res.error_code, "") << res.error_detail;
  EXPECT_EQ(res.status, 200);
  ASSERT_EQ(c.server.count(), 1u);
  EXPECT_EQ(c.server.requests().front().client_subject, "outboxd-client");
}

TEST(tls, an_mtls_receiver_refuses_no_client_certificate_or_one_it_does_not_trust) {
  mtls_case c;
  const auto without = c.post_with(std::nullopt);
  expect_refused(without, "tls_client_certificate_rejected", "certificate");
  const test_authority stranger("stranger CA");
  const auto untrusted = c.post_with(
      stranger.issue({.common_name = "outboxd-client", .subject_alt_names = "", .client = true}));
  expect_refused(untrusted, "tls_client_certificate_rejected", "unknown ca");
  EXPECT_EQ(c.server.count(), 0u);
}

TEST(tls, a_client_key_that_is_not_the_certificates_fails_every_https_post) {
  const test_authority ca;
  const auto one = ca.issue({.client = true});
  const auto another = ca.issue({.client = true});
  const temp_file cert(one.certificate);
  const temp_file key(another.key);
  auto options = local_client_options();
  options.client_cert_file = cert.path();
  options.client_key_file = key.path();
  post_harness client(options);
  const auto& problem = client.client().tls_setup_error();
  std::printf("mismatched key: %s\n", problem.c_str());
  EXPECT_NE(problem.find(key.path()), std::string::npos) << problem;
  EXPECT_NE(problem.find("mismatch"), std::string::npos) << problem;
  const auto req = make_request("https://127.0.0.1:1/hook");
  const auto res = client.post(req);
  EXPECT_EQ(res.error_code, "tls");
  EXPECT_EQ(res.error_detail, client.client().tls_setup_error());
}

// The database side: when does the daemon warn that its PostgreSQL session is not encrypted? A
// real non-local server cannot be reached from the tests (network only on loopback), so the
// decision is tested on what libpq would report.
TEST(database_tls, only_an_unencrypted_session_to_a_non_local_server_is_flagged) {
  using pg::crosses_network_in_clear;
  EXPECT_TRUE(crosses_network_in_clear({.host = "db.example", .address = "10.1.2.3"}));
  EXPECT_TRUE(crosses_network_in_clear({.host = "10.1.2.3", .address = "10.1.2.3"}));
  EXPECT_TRUE(crosses_network_in_clear({.host = "2001:db8::5", .address = "2001:db8::5"}));
  EXPECT_TRUE(crosses_network_in_clear({.host = "db.example", .address = ""}));
  // A name that resolved to loopback is judged by the address connected to.
  EXPECT_FALSE(crosses_network_in_clear({.host = "localhost", .address = "127.0.0.1"}));
  EXPECT_FALSE(crosses_network_in_clear({.host = "localhost", .address = "::1"}));
  EXPECT_FALSE(crosses_network_in_clear({.host = "127.0.0.53", .address = "127.0.0.53"}));
  EXPECT_FALSE(crosses_network_in_clear({.host = "x", .address = "::ffff:127.0.0.1"}));
  // And a loopback-looking name that went elsewhere is not trusted for its name.
  EXPECT_TRUE(crosses_network_in_clear({.host = "localhost", .address = "192.0.2.7"}));
  // Unix sockets never leave the machine.
  EXPECT_FALSE(crosses_network_in_clear({.host = "/var/run/postgresql", .address = ""}));
  EXPECT_FALSE(crosses_network_in_clear({.host = "@pgsocket", .address = ""}));
  // Encrypted is fine anywhere.
  EXPECT_FALSE(
      crosses_network_in_clear({.host = "db.example", .address = "10.1.2.3", .encrypted = true}));
}

}  // namespace
}  // namespace outboxd::test
