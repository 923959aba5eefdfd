#include "outboxd/http/client.hpp"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <exception>
#include <list>
#include <map>

#include "outboxd/http/field_syntax.hpp"
#include "outboxd/http/response_head.hpp"

namespace outboxd::http {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;  // "http" alone would name outboxd::http here
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using clock = std::chrono::steady_clock;
using error_code = boost::system::error_code;

// Body bytes read per step: small enough that a cut body costs little extra reading.
constexpr std::size_t kBodyChunk = 16 * 1024;

// ---------------------------------------------------------------------------------------------
// Errors

const error_code& http_error_sample() {
  static const error_code sample = bhttp::make_error_code(bhttp::error::bad_version);
  return sample;
}

// The peer went away: a reused keep-alive connection failing this way before any response byte
// was most likely closed by the server while idle.
bool is_peer_gone(const error_code& ec) {
  return ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == ssl::error::stream_truncated;
}

// The TLS error code for a failed handshake or TLS read/write, from the certificate verify
// result (X509_V_OK when verification was not the problem) and the OpenSSL error reason. Every
// code starts with "tls", which is how metrics and the circuit breaker recognise them.
std::string tls_error_code(const error_code& ec, long verify_result) {
  switch (verify_result) {
    case X509_V_OK:
      break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return "tls_certificate_expired";
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return "tls_hostname_mismatch";
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
      return "tls_untrusted";
    default:
      return "tls";
  }
  if (ec.category() != asio::error::get_ssl_category()) return "tls";
  switch (ERR_GET_REASON(static_cast<unsigned long>(ec.value()))) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_SSL_VERSION:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
      return "tls_protocol_version";
    // A server only sends these alerts about the certificate it received: ours.
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
      return "tls_client_certificate_rejected";
    default:
      return "tls";
  }
}

// Maps a transport error to response::error_code (deadlines are checked by the caller first).
std::string classify(const error_code& ec) {
  if (ec == beast::error::timeout || ec == asio::error::timed_out) return "timeout";
  if (ec == asio::error::connection_refused) return "connect_refused";
  if (is_peer_gone(ec) || ec == bhttp::error::partial_message) return "reset";
  if (ec.category() == asio::error::get_ssl_category() ||
      ec.category() == ssl::error::get_stream_category()) {
    return tls_error_code(ec, X509_V_OK);
  }
  if (ec.category() == http_error_sample().category()) return "protocol";
  return "io";
}

// Resolver failures are "dns" (host_not_found, host_not_found_try_again, no_data, no_recovery,
// and whatever getaddrinfo reports through errno), except no answer in time: "dns_timeout".
std::string describe_resolve_error(const std::string& host, const error_code& ec) {
  return fmt::format("cannot resolve {}: {}", host, ec.message());
}

std::string tls_failure_detail(const std::string& host, const error_code& ec, long verify) {
  auto detail = fmt::format("TLS handshake with {} failed: {}", host, ec.message());
  // The handshake error only says "certificate verify failed"; the verify result says why.
  if (verify != X509_V_OK) {
    detail += fmt::format(" ({})", X509_verify_cert_error_string(verify));
  }
  return detail;
}

void fail(response& out, std::string code, std::string detail) {
  out.status = 0;
  out.error_code = std::move(code);
  out.error_detail = std::move(detail);
}

// ---------------------------------------------------------------------------------------------
// Connections

struct connection {
  std::optional<beast::tcp_stream> plain;
  std::optional<ssl::stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;  // bytes read past the header, owned by the next parse
  clock::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  void close() {
    error_code ignored;
    lowest().socket().close(ignored);
  }
};

// An idle keep-alive connection and the endpoint it belongs to.
struct pooled {
  std::string key;
  std::unique_ptr<connection> conn;
};
using pooled_list = std::list<pooled>;

enum class ending {
  reusable,  // the response was read completely and the server keeps the connection open
  closed,    // done (or failed); the connection must not be used again
  stale,     // a reused connection was found dead before any response byte: retry on a new one
};

// The request body is sent straight from the shared string, without a copy per attempt.
using request_message = bhttp::request<bhttp::span_body<const char>>;

bool is_framing_header(std::string_view name) {
  // The client owns these: a second Host or Content-Length would let a header smuggle requests.
  return equals_ignoring_case(name, "host") || equals_ignoring_case(name, "content-length") ||
         equals_ignoring_case(name, "transfer-encoding") ||
         equals_ignoring_case(name, "connection");
}

// Fills `message`; returns an error detail for a header that cannot be sent safely.
std::optional<std::string> build_request(const request& req, request_message& message) {
  message.method(bhttp::verb::post);
  message.target(req.url.target.empty() ? "/" : req.url.target);
  message.version(11);
  message.set(bhttp::field::host, req.url.host_header());
  for (const auto& header : req.headers) {
    if (!is_token(header.name)) {
      // The name itself stays out of the detail: it may hold control characters.
      return std::string("a request header name is not an HTTP token");
    }
    const bool bad_value =
        std::any_of(header.value.begin(), header.value.end(), is_forbidden_in_value);
    if (bad_value) return fmt::format("request header {} holds a control character", header.name);
    if (is_framing_header(header.name)) continue;
    message.insert(header.name, header.value);
  }
  if (req.body) {
    message.body() = beast::span<const char>(req.body->data(), req.body->size());
  }
  message.content_length(message.body().size());
  message.keep_alive(true);
  return std::nullopt;
}

struct exchange_limits {
  clock::time_point deadline;
  std::size_t max_body = 0;
  bool reused = false;
};

std::string timeout_detail(std::string_view step, std::chrono::milliseconds budget) {
  return fmt::format("timed out {} (limit {} ms)", step, budget.count());
}

// One request/response on an open connection. Never throws; failures land in `out`.
template <class Stream>
asio::awaitable<ending> exchange_on(Stream& stream, connection& conn,
                                    const request_message& message, exchange_limits limits,
                                    std::chrono::milliseconds budget, response& out) {
  auto& lowest = conn.lowest();
  const auto failed = [&](const error_code& ec, std::string_view step) {
    if (clock::now() >= limits.deadline || ec == beast::error::timeout) {
      fail(out, "timeout", timeout_detail(step, budget));
    } else {
      fail(out, classify(ec), fmt::format("{}: {}", step, ec.message()));
    }
    return ending::closed;
  };

  lowest.expires_at(limits.deadline);
  const auto [write_ec, written] =
      co_await bhttp::async_write(stream, message, asio::as_tuple(asio::use_awaitable));
  (void)written;
  if (write_ec) {
    if (limits.reused && is_peer_gone(write_ec) && clock::now() < limits.deadline) {
      co_return ending::stale;
    }
    co_return failed(write_ec, "sending the request");
  }

  std::optional<response_parser> parser;
  for (int interim = 0;; ++interim) {
    parser.emplace();
    // The body is read in bounded steps below and cut at max_body.
    limit_response_parser(*parser);
    lowest.expires_at(limits.deadline);
    const auto [header_ec, header_bytes] = co_await bhttp::async_read_header(
        stream, conn.buffer, *parser, asio::as_tuple(asio::use_awaitable));
    (void)header_bytes;
    if (header_ec) {
      const bool nothing_arrived = interim == 0 && !parser->got_some() && conn.buffer.size() == 0;
      if (limits.reused && nothing_arrived && is_peer_gone(header_ec) &&
          clock::now() < limits.deadline) {
        co_return ending::stale;
      }
      co_return failed(header_ec, "waiting for the response");
    }
    const int status = parser->get().result_int();
    if (!is_interim_status(status)) break;
    // Each interim response costs a parse and restarts nothing: without a cap a hostile receiver
    // could fill the whole deadline with them.
    if (interim + 1 >= kMaxInterimResponses) {
      fail(out, "protocol",
           fmt::format("more than {} interim (1xx) responses", kMaxInterimResponses - 1));
      co_return ending::closed;
    }
  }

  auto& head = parser->get();
  auto fields = read_response_head(head);
  const int status = fields.status;
  out.retry_after = std::move(fields.retry_after);
  out.date = std::move(fields.date);

  std::vector<char> scratch;
  bool cut = false;
  while (!parser->is_done()) {
    // Ask for at most one byte more than still fits: that byte proves the body is too long.
    const std::size_t room = limits.max_body - out.body_prefix.size();
    scratch.resize(room >= kBodyChunk ? kBodyChunk : room + 1);
    head.body().data = scratch.data();
    head.body().size = scratch.size();
    lowest.expires_at(limits.deadline);
    const auto [read_ec, read_bytes] = co_await bhttp::async_read(
        stream, conn.buffer, *parser, asio::as_tuple(asio::use_awaitable));
    (void)read_bytes;
    const std::size_t got = scratch.size() - head.body().size;
    out.body_prefix.append(scratch.data(), std::min(got, room));
    if (got > room) {
      cut = true;
      break;
    }
    if (read_ec && read_ec != bhttp::error::need_buffer) {
      co_return failed(read_ec, fmt::format("reading the body of a {} response", status));
    }
  }
  out.status = status;
  // A cut body is abandoned, never drained: the connection goes with it.
  if (cut || status < 200) co_return ending::closed;
  const bool reusable = head.keep_alive() && parser->is_done() && conn.buffer.size() == 0;
  co_return reusable ? ending::reusable : ending::closed;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// client

struct client::impl {
  impl(asio::any_io_executor ex, client_options opts)
      : executor(std::move(ex)),
        options(std::move(opts)),
        tls_context(ssl::context::tls_client),
        names(options.dns),
        sweep_timer(executor) {
    tls_context.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(tls_context.native_handle(), TLS1_2_VERSION);
    error_code ec;
    tls_context.set_default_verify_paths(ec);
    if (ec) tls_setup_error = fmt::format("cannot load the system CA store: {}", ec.message());
    if (!options.ca_file.empty()) {
      tls_context.load_verify_file(options.ca_file, ec);
      if (ec) tls_setup_error = fmt::format("cannot load {}: {}", options.ca_file, ec.message());
    }
    if (!options.client_cert_file.empty() || !options.client_key_file.empty()) {
      load_client_certificate();
    }
  }

  // Presented to servers that ask for one (mTLS). A pair that does not load, or a key that is not
  // the certificate's, fails every https post rather than sending none.
  void load_client_certificate() {
    error_code ec;
    tls_context.use_certificate_chain_file(options.client_cert_file, ec);
    if (ec) {
      tls_setup_error = fmt::format("cannot load the client certificate {}: {}",
                                    options.client_cert_file, ec.message());
      return;
    }
    tls_context.use_private_key_file(options.client_key_file, ssl::context::pem, ec);
    if (ec) {
      tls_setup_error =
          fmt::format("cannot load the client key {}: {}", options.client_key_file, ec.message());
      return;
    }
    if (SSL_CTX_check_private_key(tls_context.native_handle()) != 1) {
      ERR_clear_error();
      tls_setup_error = fmt::format("the client key {} and the certificate {}: key values mismatch",
                                    options.client_key_file, options.client_cert_file);
    }
  }

  asio::awaitable<void> send(const request& req, clock::time_point start, response& out);
  asio::awaitable<std::vector<tcp::endpoint>> resolve(const endpoint_url& url,
                                                      clock::time_point deadline, response& out);
  asio::awaitable<std::unique_ptr<connection>> open(const endpoint_url& url,
                                                    clock::time_point deadline, response& out);
  asio::awaitable<ending> exchange(connection& conn, const request_message& message,
                                   exchange_limits limits, response& out);

  std::unique_ptr<connection> acquire(const std::string& key);
  void release(const std::string& key, std::unique_ptr<connection> conn);
  // Closes one idle connection and forgets it.
  void drop(pooled_list::iterator entry);
  void drop_expired(clock::time_point now);
  void arm_sweep();
  void stop_sweep();

  asio::any_io_executor executor;
  client_options options;
  ssl::context tls_context;
  std::string tls_setup_error;  // https posts fail with it instead of trusting less than asked
  resolver names;
  // Idle keep-alive connections, all endpoints, in the order they became idle (oldest first),
  // and per endpoint key the same entries, oldest first.
  pooled_list idle;
  std::map<std::string, std::deque<pooled_list::iterator>, std::less<>> idle_by_key;
  asio::steady_timer sweep_timer;
  bool sweep_armed = false;
  std::uint64_t sweep_generation = 0;  // a sweep wait from before close_idle() does nothing
  // The sweep's handler may run after the client is gone (cancelled by its destruction).
  std::shared_ptr<char> lifetime = std::make_shared<char>();
  std::uint64_t closed_endpoint_cap = 0;
  std::uint64_t closed_total_cap = 0;
  std::uint64_t closed_timeout = 0;
};

void client::impl::drop(pooled_list::iterator entry) {
  const auto found = idle_by_key.find(entry->key);
  auto& entries = found->second;
  entries.erase(std::find(entries.begin(), entries.end(), entry));
  if (entries.empty()) idle_by_key.erase(found);
  entry->conn->close();
  idle.erase(entry);
}

void client::impl::drop_expired(clock::time_point now) {
  while (!idle.empty() && now - idle.front().conn->idle_since > options.idle_timeout) {
    drop(idle.begin());
    ++closed_timeout;
  }
}

std::unique_ptr<connection> client::impl::acquire(const std::string& key) {
  drop_expired(clock::now());
  const auto found = idle_by_key.find(key);
  if (found == idle_by_key.end()) return nullptr;
  // Most recently used first: the one least likely to have been closed by the server.
  const auto entry = found->second.back();
  found->second.pop_back();
  if (found->second.empty()) idle_by_key.erase(found);
  auto conn = std::move(entry->conn);
  idle.erase(entry);
  return conn;
}

void client::impl::release(const std::string& key, std::unique_ptr<connection> conn) {
  // Destroying a connection closes it.
  if (options.max_idle_per_endpoint == 0 || options.max_idle_connections == 0) return;
  const auto now = clock::now();
  drop_expired(now);
  if (const auto same = idle_by_key.find(key);
      same != idle_by_key.end() && same->second.size() >= options.max_idle_per_endpoint) {
    drop(same->second.front());
    ++closed_endpoint_cap;
  }
  if (idle.size() >= options.max_idle_connections) {
    drop(idle.begin());  // idle longest, whichever endpoint it belongs to
    ++closed_total_cap;
  }
  conn->idle_since = now;
  idle.push_back({key, std::move(conn)});
  idle_by_key[key].push_back(std::prev(idle.end()));
  arm_sweep();
}

void client::impl::arm_sweep() {
  if (sweep_armed || idle.empty()) return;
  sweep_armed = true;
  // An idle connection is closed at most a quarter of the timeout late.
  const auto interval = std::max(options.idle_timeout / 4, std::chrono::milliseconds(10));
  sweep_timer.expires_after(interval);
  sweep_timer.async_wait([this, alive = std::weak_ptr<char>(lifetime),
                          generation = sweep_generation](const error_code& ec) {
    if (alive.expired() || generation != sweep_generation) return;
    sweep_armed = false;
    if (ec) return;
    drop_expired(clock::now());
    arm_sweep();  // while anything is left to sweep
  });
}

void client::impl::stop_sweep() {
  ++sweep_generation;
  sweep_armed = false;
  sweep_timer.cancel();
}

asio::awaitable<std::vector<tcp::endpoint>> client::impl::resolve(const endpoint_url& url,
                                                                  clock::time_point deadline,
                                                                  response& out) {
  // On the resolver's own threads: a name whose DNS never answers delays only its own requests.
  const auto answer = co_await names.resolve(url.host, deadline);
  std::vector<tcp::endpoint> endpoints;
  if (answer.error == asio::error::timed_out) {
    fail(out, "dns_timeout",
         fmt::format("no DNS answer for {} in time (limit {} ms, and at most {} ms per lookup)",
                     url.host, options.connect_timeout.count(), names.options().timeout.count()));
    co_return endpoints;
  }
  if (answer.error) {
    fail(out, "dns", describe_resolve_error(url.host, answer.error));
    co_return endpoints;
  }
  for (const auto& address : answer.addresses) endpoints.emplace_back(address, url.port);
  if (endpoints.empty()) fail(out, "dns", fmt::format("{} has no addresses", url.host));
  co_return endpoints;
}

asio::awaitable<std::unique_ptr<connection>> client::impl::open(const endpoint_url& url,
                                                                clock::time_point deadline,
                                                                response& out) {
  // Resolve, connect and TLS handshake share connect_timeout, inside the request's deadline.
  const auto connect_deadline = std::min(deadline, clock::now() + options.connect_timeout);
  const auto connect_budget =
      std::min(options.connect_timeout,
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
  if (url.tls && !tls_setup_error.empty()) {
    fail(out, "tls", tls_setup_error);
    co_return nullptr;
  }

  std::vector<tcp::endpoint> candidates;
  error_code literal_ec;
  const auto literal = asio::ip::make_address(url.host, literal_ec);
  if (!literal_ec) {
    candidates.emplace_back(literal, url.port);
  } else {
    auto resolved = co_await resolve(url, connect_deadline, out);
    if (!out.error_code.empty()) co_return nullptr;
    candidates = std::move(resolved);
  }

  std::vector<tcp::endpoint> permitted;
  std::string first_refused;  // "10.0.0.1 (private-use 10.0.0.0/8)"
  for (const auto& candidate : candidates) {
    const auto refusal = options.addresses.refusal(candidate.address());
    if (!refusal) {
      permitted.push_back(candidate);
    } else if (first_refused.empty()) {
      first_refused = fmt::format("{} ({})", candidate.address().to_string(), refusal->reason);
    }
  }
  if (permitted.empty()) {
    fail(out, "blocked_address",
         literal_ec ? fmt::format("{} resolves to {}, which is not allowed (use --allow-cidr)",
                                  url.host, first_refused)
                    : fmt::format("{} is not allowed (use --allow-cidr)", first_refused));
    co_return nullptr;
  }

  auto conn = std::make_unique<connection>();
  if (url.tls) {
    conn->tls.emplace(executor, tls_context);
  } else {
    conn->plain.emplace(executor);
  }
  auto& lowest = conn->lowest();
  lowest.expires_at(connect_deadline);
  const auto [connect_ec, connected] =
      co_await lowest.async_connect(permitted, asio::as_tuple(asio::use_awaitable));
  if (connect_ec) {
    if (clock::now() >= connect_deadline || connect_ec == beast::error::timeout) {
      fail(out, "timeout",
           fmt::format("timed out connecting to {} (limit {} ms)", url.bracketed_host(),
                       connect_budget.count()));
    } else {
      fail(out, classify(connect_ec),
           fmt::format("connect to {}:{}: {}", url.bracketed_host(), url.port,
                       connect_ec.message()));
    }
    co_return nullptr;
  }
  (void)connected;
  error_code ignored;
  // The request goes out in one write; don't let Nagle hold back a TLS record's tail.
  lowest.socket().set_option(tcp::no_delay(true), ignored);

  if (!url.tls) co_return conn;

  auto& stream = *conn->tls;
  SSL* handle = stream.native_handle();
  // OpenSSL checks the name itself (rather than a verify callback), so a mismatch has its own
  // verify result (X509_V_ERR_HOSTNAME_MISMATCH) and error code.
  bool name_set = false;
  if (literal_ec) {
    // SNI carries DNS names only. (SSL_set_tlsext_host_name is a macro with a C cast.)
    SSL_ctrl(handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(url.host.c_str()));
    SSL_set_hostflags(handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    name_set = SSL_set1_host(handle, url.host.c_str()) == 1;
  } else {
    name_set = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(handle), url.host.c_str()) == 1;
  }
  if (!name_set) {
    ERR_clear_error();
    fail(out, "tls", fmt::format("cannot set up host name verification for {}", url.host));
    co_return nullptr;
  }
  lowest.expires_at(connect_deadline);
  const auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::client,
                                                              asio::as_tuple(asio::use_awaitable));
  if (handshake_ec) {
    if (clock::now() >= connect_deadline || handshake_ec == beast::error::timeout) {
      fail(out, "timeout",
           fmt::format("timed out in the TLS handshake with {} (limit {} ms)", url.host,
                       connect_budget.count()));
    } else if (handshake_ec == asio::error::connection_reset ||
               handshake_ec == asio::error::broken_pipe) {
      fail(out, "reset",
           fmt::format("TLS handshake with {}: {}", url.host, handshake_ec.message()));
    } else {
      // Anything else, including the peer hanging up mid-handshake, is a TLS failure.
      const long verify = SSL_get_verify_result(handle);
      fail(out, tls_error_code(handshake_ec, verify),
           tls_failure_detail(url.host, handshake_ec, verify));
    }
    co_return nullptr;
  }
  co_return conn;
}

asio::awaitable<ending> client::impl::exchange(connection& conn, const request_message& message,
                                               exchange_limits limits, response& out) {
  const auto budget = options.request_timeout;
  if (conn.tls) {
    const auto result = co_await exchange_on(*conn.tls, conn, message, limits, budget, out);
    co_return result;
  }
  const auto result = co_await exchange_on(*conn.plain, conn, message, limits, budget, out);
  co_return result;
}

asio::awaitable<void> client::impl::send(const request& req, clock::time_point start,
                                         response& out) {
  const auto deadline = start + options.request_timeout;
  // Checked on every request, pooled connection or not, so a reload takes effect at once.
  if (auto refusal = options.endpoints.refusal(req.url)) {
    fail(out, std::string(refusal->code), std::move(refusal->detail));
    co_return;
  }
  request_message message;
  std::optional<std::string> build_error;
  try {
    build_error = build_request(req, message);
  } catch (const std::exception& e) {  // Beast refuses oversized fields by throwing
    build_error = e.what();
  }
  if (build_error) {
    fail(out, "io", *build_error);
    co_return;
  }

  const std::string key = req.url.key();
  auto conn = acquire(key);
  const bool reused = conn != nullptr;
  if (!conn) {
    auto fresh = co_await open(req.url, deadline, out);
    if (!fresh) co_return;
    conn = std::move(fresh);
  }
  const exchange_limits limits{
      .deadline = deadline, .max_body = options.max_response_bytes, .reused = reused};
  auto result = co_await exchange(*conn, message, limits, out);
  if (result == ending::stale) {
    // The server closed the idle connection before it saw our request: safe to send it again,
    // once, on a fresh connection.
    conn->close();
    conn.reset();
    out = response{};
    auto fresh = co_await open(req.url, deadline, out);
    if (!fresh) co_return;
    conn = std::move(fresh);
    const exchange_limits retry_limits{
        .deadline = deadline, .max_body = options.max_response_bytes, .reused = false};
    result = co_await exchange(*conn, message, retry_limits, out);
  }
  if (result == ending::reusable) {
    release(key, std::move(conn));
  } else {
    conn->close();
  }
}

client::client(asio::any_io_executor executor, client_options options)
    : impl_(std::make_unique<impl>(std::move(executor), std::move(options))) {}

client::~client() = default;

asio::awaitable<response> client::post(const request& request) {
  const auto start = clock::now();
  response result;
  co_await impl_->send(request, start, result);
  result.duration = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
  co_return result;
}

const std::string& client::tls_setup_error() const { return impl_->tls_setup_error; }

std::size_t client::idle_connections() const { return impl_->idle.size(); }

client_stats client::stats() const {
  return {.idle_connections = impl_->idle.size(),
          .idle_closed_endpoint_cap = impl_->closed_endpoint_cap,
          .idle_closed_total_cap = impl_->closed_total_cap,
          .idle_closed_timeout = impl_->closed_timeout,
          .dns = impl_->names.stats(),
          .dns_in_flight = impl_->names.in_flight()};
}

void client::set_address_policy(address_policy addresses) {
  impl_->options.addresses = std::move(addresses);
}

void client::set_endpoint_policy(endpoint_policy endpoints) {
  impl_->options.endpoints = std::move(endpoints);
}

void client::close_idle() {
  for (auto& entry : impl_->idle) entry.conn->close();
  impl_->idle.clear();
  impl_->idle_by_key.clear();
  impl_->stop_sweep();
}

}  // namespace outboxd::http
