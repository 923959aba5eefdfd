#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "outboxd/http/address_policy.hpp"
#include "outboxd/http/endpoint_policy.hpp"
#include "outboxd/http/endpoint_url.hpp"
#include "outboxd/http/resolver.hpp"
#include "outboxd/message.hpp"

namespace outboxd::http {

struct request {
  endpoint_url url;
  std::vector<http_header> headers;
  std::shared_ptr<const std::string> body;  // shared by every subscriber of one event
};

// How one attempt ended: a status code when a response came, an error code when none did.
struct response {
  int status = 0;  // 0 unless a complete response came (a body cut off mid-way is an error)
  // Empty when a response came; otherwise one of: timeout, connect_refused, dns (the name does
  // not resolve), dns_timeout (no DNS answer in time), reset, protocol (a malformed or endless
  // response head, too many interim responses), io (any other transport error), a TLS failure:
  // tls_certificate_expired (outside its validity period), tls_hostname_mismatch, tls_untrusted
  // (self-signed, unknown CA), tls_protocol_version (the server offers nothing from TLS 1.2 up),
  // tls_client_certificate_rejected (the server refused ours or wanted one), tls (anything else);
  // or a refusal before anything was sent: https_required, port_not_allowed (endpoint_policy),
  // blocked_address (address_policy).
  std::string error_code;
  std::string error_detail;  // for logs and the attempt record
  std::string body_prefix;   // the response body's first bytes, at most max_response_bytes
  std::optional<std::string> retry_after;  // the Retry-After header, verbatim
  std::optional<std::string> date;         // the Date header, verbatim (a Retry-After date's clock)
  std::chrono::milliseconds duration{0};   // from the start of post() to its end
};

struct client_options {
  std::chrono::milliseconds connect_timeout{5000};    // resolve + TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{15'000};  // the whole attempt, connect included
  std::size_t max_response_bytes = 4096;              // read and kept; a longer body is cut and the
                                                      // connection dropped instead of drained
  std::size_t max_idle_per_endpoint = 16;
  // Idle connections kept, all endpoints together: past it the one idle longest is closed, so
  // many distinct receivers cannot use up file descriptors.
  std::size_t max_idle_connections = 256;
  // Pooled connections idle longer are closed, by a periodic sweep (every quarter of it) and
  // before any reuse.
  std::chrono::milliseconds idle_timeout{30'000};
  resolver_options dns;
  address_policy addresses;
  endpoint_policy endpoints;
  std::string ca_file;  // extra trusted CAs (PEM) on top of the system store; empty for none
  // A client certificate (chain, PEM) and its private key (PEM) for receivers that require mTLS;
  // both or neither.
  std::string client_cert_file;
  std::string client_key_file;
};

// HTTP/1.1 POSTs with Boost.Beast: keep-alive connections reused per endpoint (bounded pool),
// https with certificate and host-name verification and SNI, redirects never followed, every
// step under a deadline. Single-threaded: use from one executor. Never throws from post().
struct client_stats {
  std::size_t idle_connections = 0;
  // Idle connections closed: over max_idle_per_endpoint, over max_idle_connections, idle past
  // idle_timeout.
  std::uint64_t idle_closed_endpoint_cap = 0;
  std::uint64_t idle_closed_total_cap = 0;
  std::uint64_t idle_closed_timeout = 0;
  resolver_stats dns;
  std::size_t dns_in_flight = 0;
};

class client {
 public:
  client(boost::asio::any_io_executor executor, client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // The caller keeps `request` (and the client) alive until the post completes: co_await it
  // directly, with the request a named local.
  boost::asio::awaitable<response> post(const request& request);

  // Why https posts will fail, found at construction (an unreadable CA file, a client key that
  // does not match its certificate); empty when TLS is ready.
  const std::string& tls_setup_error() const;

  std::size_t idle_connections() const;
  client_stats stats() const;
  // Closes every pooled connection and stops the idle sweep's timer until a connection is pooled
  // again (shutdown: the timer would keep the event loop running; or a test checking reconnects).
  void close_idle();
  // A reload: connections opened from now on are checked against this policy.
  void set_address_policy(address_policy addresses);
  // A reload: requests from now on are checked against this policy.
  void set_endpoint_policy(endpoint_policy endpoints);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace outboxd::http
