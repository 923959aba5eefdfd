#include "support/receiver.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace outboxd::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// Asio does not mark sockets close-on-exec: without this, a daemon a test forks would inherit the
// receiver's listening socket and keep its port open after the receiver is gone.
void close_on_exec(int fd) { ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC); }

// A keep-alive connection with no request in flight is dropped after this long.
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kCloseTimeout = std::chrono::seconds(5);
// A hung request is abandoned after this long, so a forgotten client cannot pin the receiver.
constexpr auto kHangLimit = std::chrono::seconds(60);
// What a hung connection swallows (a client may keep sending) before we give up on it.
constexpr std::size_t kHangMaxBytes = 1 << 20;
constexpr auto kEndlessLimit = std::chrono::seconds(30);
constexpr std::size_t kEndlessChunkSize = 16 * 1024;
// 1 GiB: past this a client reading an "endless" body is not going to stop by itself.
constexpr std::size_t kEndlessMaxChunks = 64 * 1024;
// Slack on top of size × interval for a dribbled response.
constexpr auto kDribbleSlack = std::chrono::seconds(10);

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// ---- TLS ----------------------------------------------------------------------------------------

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test receiver TLS setup: ") + what + " failed");
}

// Loads the server's identity into `context` and, for mTLS, the CA its clients must present a
// certificate from.
void setup_tls(ssl::context& context, const pem_identity& identity, const receiver::options& opts) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                      ssl::context::no_sslv3);
  SSL_CTX* native = context.native_handle();
  if (opts.tls_1_1_only) {
    // A legacy server: OpenSSL 3 allows TLS 1.1 only at security level 0 (MD5-SHA1 signatures).
    SSL_CTX_set_security_level(native, 0);
    require(SSL_CTX_set_cipher_list(native, "DEFAULT:@SECLEVEL=0") == 1, "SSL_CTX_set_cipher_list");
    require(SSL_CTX_set_min_proto_version(native, TLS1_1_VERSION) == 1, "min TLS 1.1");
    require(SSL_CTX_set_max_proto_version(native, TLS1_1_VERSION) == 1, "max TLS 1.1");
  } else {
    require(SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) == 1, "min TLS 1.2");
  }
  context.use_certificate_chain(asio::buffer(identity.certificate));
  context.use_private_key(asio::buffer(identity.key), ssl::context::pem);
  require(SSL_CTX_check_private_key(native) == 1, "SSL_CTX_check_private_key");
  if (!opts.client_ca.empty()) {
    // Client certificates are verified against this CA alone; without one the handshake fails.
    context.add_certificate_authority(asio::buffer(opts.client_ca));
    context.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
}

// The subject CN of the client's certificate, empty without one.
template <typename Stream>
std::string client_subject(Stream& stream) {
  X509* peer = SSL_get1_peer_certificate(stream.native_handle());
  if (peer == nullptr) return {};
  std::array<char, 256> name{};
  const int length = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName,
                                               name.data(), static_cast<int>(name.size()));
  X509_free(peer);
  return length > 0 ? std::string(name.data(), static_cast<std::size_t>(length)) : std::string();
}
// ---- sessions -----------------------------------------------------------------------------------

// What the listener needs from a session to shut it down without knowing whether it is TLS.
class session_base {
 public:
  virtual ~session_base() = default;
  // Called on the io thread; the session closes itself on its own strand.
  virtual void stop() = 0;
};

// Where a session hands each request and learns how to answer it (receiver::impl is private, so
// the sessions see it through this).
class request_sink {
 public:
  virtual ~request_sink() = default;
  virtual reaction record(received_request request) = 0;
  // The request `record` took for `path` has been answered (or its connection ended).
  virtual void answered(std::string_view path) = 0;
};

}  // namespace

struct receiver::impl final : request_sink {
  struct script {
    std::vector<reaction> sequence;
    reaction then;
    std::size_t next = 0;
    std::function<reaction(const received_request&)> decide;  // when set, instead of the above
  };

  explicit impl(options opts)
      : tls(opts.tls),
        wanted_port(opts.port),
        keep_requests(opts.keep_requests),
        settings(std::move(opts)) {}

  // Records a request and picks its reaction, under one lock so that the n-th request recorded
  // for a path is the one that got the n-th scripted reaction.
  reaction record(received_request request) override {
    reaction chosen;
    {
      const std::lock_guard lock(mutex);
      const auto found = scripts.find(path_of(request.target));
      if (found != scripts.end()) {
        script& s = found->second;
        if (s.decide) {
          chosen = s.decide(request);
        } else {
          chosen = s.next < s.sequence.size() ? s.sequence[s.next++] : s.then;
        }
      }
      for (const auto& key : {std::string(path_of(request.target)), std::string()}) {
        const auto now_active = ++active[key];
        most_active[key] = std::max(most_active[key], now_active);
      }
      if (keep_requests) log.push_back(std::move(request));
    }
    arrived.notify_all();
    return chosen;
  }

  void answered(std::string_view path) override {
    const std::lock_guard lock(mutex);
    for (const auto& key : {std::string(path), std::string()}) --active[key];
  }

  std::size_t count_locked(std::string_view path) const {
    if (path.empty()) return log.size();
    return static_cast<std::size_t>(std::count_if(
        log.begin(), log.end(), [&](const auto& r) { return path_of(r.target) == path; }));
  }

  void start();
  void do_accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void shutdown();

  const bool tls;
  const std::uint16_t wanted_port;
  const bool keep_requests;
  const options settings;
  asio::io_context io{1};
  std::optional<ssl::context> tls_context;
  tcp::acceptor acceptor{io};
  std::uint16_t port = 0;
  std::optional<temp_file> ca;  // the CA of a certificate the receiver made itself
  std::thread thread;

  mutable std::mutex mutex;
  mutable std::condition_variable arrived;
  std::vector<received_request> log;                   // guarded by mutex
  std::map<std::string, script, std::less<>> scripts;  // guarded by mutex
  // Requests being answered now and the most at once, per path and ("") in all; guarded by mutex.
  std::map<std::string, std::size_t, std::less<>> active;
  std::map<std::string, std::size_t, std::less<>> most_active;
  std::atomic<std::size_t> accepted{0};

  // Touched only by the io thread (accept handler and shutdown run on io, not on a strand, and
  // io runs on that one thread).
  std::vector<std::weak_ptr<session_base>> sessions;
  bool stopping = false;
};

namespace {

// One connection, in the shape of Beast's http_server_async / advanced_server examples:
// do_x / on_x pairs, every handler on the session's strand (the stream's executor).
template <typename Stream>
class session : public session_base, public std::enable_shared_from_this<session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  template <typename... Args>
  session(request_sink& owner, tcp::socket&& socket, Args&... args)
      : owner_(owner), stream_(std::move(socket), args...), timer_(stream_.get_executor()) {}

  void run() {
    // The socket was accepted onto a strand; start there.
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&session::on_run, this->shared_from_this()));
  }

  void stop() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->abort(); });
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void on_run() {
    if constexpr (kTls) {
      lowest().expires_after(kHandshakeTimeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&session::on_handshake, this->shared_from_this()));
    } else {
      do_read();
    }
  }

  void on_handshake(beast::error_code ec) {
    if (ec) return abort();
    do_read();
  }

  void do_read() {
    if (stopped_) return;
    request_ = {};
    lowest().expires_after(kIdleTimeout);
    http::async_read(stream_, buffer_, request_,
                     beast::bind_front_handler(&session::on_read, this->shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec || stopped_) return abort();

    received_request recorded{.method = std::string(request_.method_string()),
                              .target = std::string(request_.target()),
                              .body = request_.body(),
                              .received_at = std::chrono::steady_clock::now()};
    if constexpr (kTls) recorded.client_subject = client_subject(stream_);
    for (const auto& field : request_) {
      auto [it, inserted] =
          recorded.headers.emplace(lower(field.name_string()), std::string(field.value()));
      // A repeated header reads as the comma-joined list HTTP says it is equivalent to.
      if (!inserted) it->second.append(", ").append(field.value());
    }
    keep_alive_ = request_.keep_alive();
    version_ = request_.version();
    serving_ = std::string(path_of(recorded.target));
    serving_active_ = true;
    const reaction what = owner_.record(std::move(recorded));

    switch (what.what) {
      case reaction::kind::respond:
        return do_respond(what);
      case reaction::kind::hang:
        return do_hang();
      case reaction::kind::reset:
        return do_reset();
      case reaction::kind::dribble:
        return do_dribble(what);
      case reaction::kind::endless:
        return do_endless(what);
      case reaction::kind::endless_headers:
        return do_endless_headers(what);
      case reaction::kind::huge_length:
        return do_huge_length(what);
      case reaction::kind::truncate:
        return do_truncate(what);
      case reaction::kind::interim_flood:
        return do_interim_flood(what);
    }
    abort();
  }

  template <typename Body>
  void fill_header(http::response<Body>& response, const reaction& what) const {
    response.version(version_);
    response.result(static_cast<unsigned>(what.status));
    // Beast writes "<unknown-status>" as the reason of codes it does not know (e.g. 299).
    if (http::int_to_status(static_cast<unsigned>(what.status)) == http::status::unknown) {
      response.reason("Unknown");
    }
    response.set(http::field::server, "outboxd-test-receiver");
    response.set(http::field::content_type, "text/plain");
    if (what.retry_after) response.set(http::field::retry_after, *what.retry_after);
    if (what.location) response.set(http::field::location, *what.location);
    for (const auto& [name, value] : what.headers) response.set(name, value);
    response.keep_alive(keep_alive_);
  }

  // ---- respond

  void do_respond(const reaction& what) {
    if (what.delay > std::chrono::milliseconds(0)) {
      delayed_ = what;
      delayed_.delay = std::chrono::milliseconds(0);
      timer_.expires_after(what.delay);
      timer_.async_wait(beast::bind_front_handler(&session::on_delay, this->shared_from_this()));
      return;
    }
    response_ = {};
    fill_header(response_, what);
    response_.body() = what.body;
    response_.prepare_payload();
    lowest().expires_after(kIdleTimeout);
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&session::on_write, this->shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec || stopped_) return abort();
    after_response();
  }

  void on_delay(beast::error_code ec) {
    if (ec || stopped_) return abort();
    do_respond(delayed_);
  }

  void finish_serving() {
    if (!serving_active_) return;
    serving_active_ = false;
    owner_.answered(serving_);
  }

  void after_response() {
    finish_serving();
    if (keep_alive_) return do_read();
    do_close();
  }

  // ---- hang: keep reading (and discarding) until the client goes away or the limit passes

  void do_hang() {
    lowest().expires_after(kHangLimit);
    hang_bytes_ = 0;
    do_hang_read();
  }

  void do_hang_read() {
    if (stopped_) return;
    stream_.async_read_some(
        asio::buffer(scratch_),
        beast::bind_front_handler(&session::on_hang_read, this->shared_from_this()));
  }

  void on_hang_read(beast::error_code ec, std::size_t bytes) {
    hang_bytes_ += bytes;
    if (ec || stopped_ || hang_bytes_ > kHangMaxBytes) return abort();
    do_hang_read();
  }

  // ---- reset: SO_LINGER {1, 0} makes close() send RST instead of FIN

  void do_reset() {
    beast::error_code ignored;
    lowest().socket().set_option(tcp::socket::linger(true, 0), ignored);
    abort();
  }

  // ---- dribble: the whole response, one byte per interval

  void do_dribble(const reaction& what) {
    raw_ = serialized_response(what);
    sent_ = 0;
    interval_ = what.dribble_interval;
    lowest().expires_after(interval_ * static_cast<long>(raw_.size()) + kDribbleSlack);
    do_dribble_wait();
  }

  void do_dribble_wait() {
    if (stopped_) return;
    if (sent_ >= raw_.size()) return after_response();
    timer_.expires_after(interval_);
    timer_.async_wait(
        beast::bind_front_handler(&session::on_dribble_wait, this->shared_from_this()));
  }

  void on_dribble_wait(beast::error_code ec) {
    if (ec || stopped_) return abort();
    asio::async_write(
        stream_, asio::buffer(raw_.data() + sent_, 1),
        beast::bind_front_handler(&session::on_dribble_write, this->shared_from_this()));
  }

  void on_dribble_write(beast::error_code ec, std::size_t bytes) {
    if (ec || stopped_) return abort();
    sent_ += bytes;
    do_dribble_wait();
  }

  // ---- endless: a chunked body that never ends (bounded by kEndlessLimit / kEndlessMaxChunks)

  void do_endless(const reaction& what) {
    http::response<http::empty_body> response;
    fill_header(response, what);
    response.chunked(true);
    static const std::string chunk = [] {
      std::ostringstream frame;
      frame << std::hex << kEndlessChunkSize << "\r\n"
            << std::string(kEndlessChunkSize, 'x') << "\r\n";
      return frame.str();
    }();
    do_stream(serialized_head(response), chunk);
  }

  // ---- endless_headers: one header line after another, never the blank line that ends them

  void do_endless_headers(const reaction& what) {
    static const std::string line = [] {
      std::string filler;
      while (filler.size() < kEndlessChunkSize) {
        filler += "X-Filler: " + std::string(100, 'x') + "\r\n";
      }
      return filler;
    }();
    do_stream(status_line(what.status), line);
  }

  // ---- huge_length: a Content-Length nobody should believe, and body bytes to match it

  void do_huge_length(const reaction& what) {
    http::response<http::empty_body> response;
    fill_header(response, what);
    response.set(http::field::content_length, std::to_string(what.declared_length));
    static const std::string bytes(kEndlessChunkSize, 'x');
    do_stream(serialized_head(response), bytes);
  }

  // Writes `head`, then `unit` again and again (bounded by kEndlessLimit / kEndlessMaxChunks).
  void do_stream(std::string head, const std::string& unit) {
    raw_ = std::move(head);
    chunk_ = &unit;
    chunks_sent_ = 0;
    lowest().expires_after(kEndlessLimit);
    asio::async_write(
        stream_, asio::buffer(raw_),
        beast::bind_front_handler(&session::on_endless_write, this->shared_from_this()));
  }

  void on_endless_write(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec || stopped_ || chunks_sent_ >= kEndlessMaxChunks) return abort();
    ++chunks_sent_;
    asio::async_write(
        stream_, asio::buffer(*chunk_),
        beast::bind_front_handler(&session::on_endless_write, this->shared_from_this()));
  }

  // ---- truncate: half the declared body, then the connection ends

  void do_truncate(const reaction& what) {
    http::response<http::empty_body> response;
    fill_header(response, what);
    response.set(http::field::content_length, std::to_string(what.body.size() * 2));
    response.keep_alive(false);
    raw_ = serialized_head(response) + what.body;
    lowest().expires_after(kIdleTimeout);
    asio::async_write(
        stream_, asio::buffer(raw_),
        beast::bind_front_handler(&session::on_truncate_write, this->shared_from_this()));
  }

  void on_truncate_write(beast::error_code ec, std::size_t /*bytes*/) {
    if (ec || stopped_) return abort();
    finish_serving();
    do_close();
  }

  // ---- interim_flood: "100 Continue" heads, many of them, before the real response

  void do_interim_flood(const reaction& what) {
    const std::string interim = "HTTP/1.1 100 Continue\r\n\r\n";
    raw_.clear();
    for (int i = 0; i < what.interim_responses; ++i) raw_ += interim;
    raw_ += serialized_response(what);
    lowest().expires_after(kIdleTimeout);
    asio::async_write(stream_, asio::buffer(raw_),
                      beast::bind_front_handler(&session::on_write, this->shared_from_this()));
  }

  // The whole response `what` describes, status line to body, as bytes to write.
  std::string serialized_response(const reaction& what) const {
    http::response<http::string_body> response;
    fill_header(response, what);
    response.body() = what.body;
    response.prepare_payload();
    std::ostringstream serialized;
    serialized << response;
    return serialized.str();
  }

  template <typename Body>
  static std::string serialized_head(const http::response<Body>& response) {
    std::ostringstream serialized;
    serialized << response.base();
    return serialized.str();
  }

  std::string status_line(int status) const {
    return "HTTP/1." + std::to_string(version_ % 10) + " " + std::to_string(status) +
           " Hostile\r\n";
  }

  // ---- closing

  // The orderly end of a connection: TLS close_notify, or a TCP half-close so the client reads EOF
  // after the last response rather than a reset.
  void do_close() {
    if (stopped_) return;
    if constexpr (kTls) {
      lowest().expires_after(kCloseTimeout);
      stream_.async_shutdown(
          beast::bind_front_handler(&session::on_shutdown, this->shared_from_this()));
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      // The socket closes when the last handler lets go of the session.
    }
  }

  void on_shutdown(beast::error_code /*ec*/) { abort(); }

  // Cancels whatever is pending; every handler sees an error or stopped_ and returns, so the
  // session is destroyed once the handlers have run.
  void abort() {
    finish_serving();
    stopped_ = true;
    timer_.cancel();
    lowest().close();
  }

  request_sink& owner_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  bool stopped_ = false;
  std::string serving_;  // the path of the request being answered
  bool serving_active_ = false;
  reaction delayed_;

  std::array<char, 4096> scratch_{};
  std::size_t hang_bytes_ = 0;
  std::string raw_;
  std::size_t sent_ = 0;
  std::chrono::milliseconds interval_{};
  const std::string* chunk_ = nullptr;
  std::size_t chunks_sent_ = 0;
};

}  // namespace

void receiver::impl::start() {
  if (tls) {
    tls_context.emplace(ssl::context::tls_server);
    if (settings.identity) {
      setup_tls(*tls_context, *settings.identity, settings);
    } else {
      const test_authority authority;
      ca.emplace(authority.certificate_pem(), "outboxd-test-receiver-ca");
      setup_tls(*tls_context, authority.issue(), settings);
    }
  }
  const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"), wanted_port);
  acceptor.open(endpoint.protocol());
  close_on_exec(acceptor.native_handle());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  port = acceptor.local_endpoint().port();
  do_accept();
  thread = std::thread([this] {
    try {
      io.run();
    } catch (const std::exception& e) {
      // A handler threw: stop serving (the test then fails on its wait) rather than terminate.
      std::fprintf(stderr, "test receiver stopped: %s\n", e.what());
    }
  });
}

void receiver::impl::do_accept() {
  // Each connection gets its own strand, as in Beast's examples.
  acceptor.async_accept(asio::make_strand(io), beast::bind_front_handler(&impl::on_accept, this));
}

void receiver::impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (stopping || ec == asio::error::operation_aborted) return;
  if (!ec) {
    accepted.fetch_add(1);
    close_on_exec(socket.native_handle());
    beast::error_code ignored;
    // Dribbled bytes must leave one at a time, not wait for Nagle.
    socket.set_option(tcp::no_delay(true), ignored);
    std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
    if (tls) {
      auto s = std::make_shared<session<ssl::stream<beast::tcp_stream>>>(*this, std::move(socket),
                                                                         *tls_context);
      sessions.push_back(s);
      s->run();
    } else {
      auto s = std::make_shared<session<beast::tcp_stream>>(*this, std::move(socket));
      sessions.push_back(s);
      s->run();
    }
  }
  if (acceptor.is_open()) do_accept();
}

void receiver::impl::shutdown() {
  stopping = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  for (const auto& weak : sessions) {
    if (const auto s = weak.lock()) s->stop();
  }
  sessions.clear();
}

receiver::receiver() : receiver(options{}) {}

receiver::receiver(options opts) : impl_(std::make_unique<impl>(opts)) { impl_->start(); }

receiver::~receiver() {
  if (impl_->thread.joinable()) {
    // Once the acceptor and every session are closed the io_context runs out of work by itself.
    asio::post(impl_->io, [this] { impl_->shutdown(); });
    impl_->thread.join();
  }
}

std::uint16_t receiver::port() const { return impl_->port; }

std::string receiver::url(std::string_view path) const {
  return std::string(impl_->tls ? "https" : "http") +
         "://127.0.0.1:" + std::to_string(impl_->port) + std::string(path);
}

std::string receiver::ca_file() const { return impl_->ca ? impl_->ca->path() : std::string(); }

void receiver::react(std::string_view path, std::vector<reaction> sequence, reaction then) {
  const std::lock_guard lock(impl_->mutex);
  impl_->scripts.insert_or_assign(std::string(path_of(path)),
                                  impl::script{std::move(sequence), std::move(then), 0});
}

void receiver::react_with(std::string_view path,
                          std::function<reaction(const received_request&)> decide) {
  const std::lock_guard lock(impl_->mutex);
  impl::script s;
  s.decide = std::move(decide);
  impl_->scripts.insert_or_assign(std::string(path_of(path)), std::move(s));
}

std::vector<received_request> receiver::requests(std::string_view path) const {
  const std::lock_guard lock(impl_->mutex);
  std::vector<received_request> out;
  for (const auto& r : impl_->log) {
    if (path.empty() || path_of(r.target) == path) out.push_back(r);
  }
  return out;
}

std::size_t receiver::count(std::string_view path) const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->count_locked(path);
}

bool receiver::wait_for_count(std::size_t n, std::chrono::milliseconds timeout,
                              std::string_view path) const {
  std::unique_lock lock(impl_->mutex);
  return impl_->arrived.wait_for(lock, timeout, [&] { return impl_->count_locked(path) >= n; });
}

std::size_t receiver::connections_accepted() const { return impl_->accepted.load(); }

std::size_t receiver::max_concurrent(std::string_view path) const {
  const std::lock_guard lock(impl_->mutex);
  const auto found = impl_->most_active.find(path);
  return found == impl_->most_active.end() ? 0 : found->second;
}

// ---- signature checks ---------------------------------------------------------------------------

namespace {

const unsigned char* bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  const int written = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(text),
                                      static_cast<int>(text.size()));
  if (written < 0) return std::nullopt;
  // EVP_DecodeBlock counts the zero bytes that padding stands for.
  std::size_t padding = 0;
  if (text.ends_with("==")) {
    padding = 2;
  } else if (text.ends_with('=')) {
    padding = 1;
  }
  out.resize(static_cast<std::size_t>(written) - padding);
  return out;
}

std::string base64_encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int written = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes(data),
                                      static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(written));
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  // HMAC() wants a non-null key pointer even for an empty key.
  static const unsigned char kEmptyKey = 0;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* key_bytes = key.empty() ? &kEmptyKey : bytes(key);
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()), bytes(message), message.size(),
           digest, &length) == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

const std::string* header(const std::map<std::string, std::string>& headers,
                          const std::string& name) {
  const auto found = headers.find(name);
  return found == headers.end() ? nullptr : &found->second;
}

}  // namespace

bool verify_standard_webhooks(std::string_view secret,
                              const std::map<std::string, std::string>& headers,
                              std::string_view body) {
  const std::string* id = header(headers, "webhook-id");
  const std::string* timestamp = header(headers, "webhook-timestamp");
  const std::string* signatures = header(headers, "webhook-signature");
  if (id == nullptr || timestamp == nullptr || signatures == nullptr) return false;

  constexpr std::string_view kPrefix = "whsec_";
  std::string key(secret);
  if (secret.starts_with(kPrefix)) {
    auto decoded = base64_decode(secret.substr(kPrefix.size()));
    if (!decoded) return false;
    key = std::move(*decoded);
  }
  std::string signed_content = *id;
  signed_content.append(".").append(*timestamp).append(".").append(body);
  const std::string digest = hmac_sha256(key, signed_content);
  if (digest.empty()) return false;
  const std::string expected = base64_encode(digest);

  // "v1,<b64> v1,<b64> ...": any v1 entry may match (key rotation sends several).
  constexpr std::string_view kVersion = "v1,";
  std::string_view rest = *signatures;
  bool matched = false;
  while (!rest.empty()) {
    const std::size_t space = rest.find(' ');
    const std::string_view entry = rest.substr(0, space);
    rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
    if (entry.starts_with(kVersion) &&
        constant_time_equal(entry.substr(kVersion.size()), expected)) {
      matched = true;
    }
  }
  return matched;
}

bool verify_ferriskey(std::string_view secret, const std::map<std::string, std::string>& headers,
                      std::string_view body) {
  const std::string* timestamp = header(headers, "x-ferriskey-timestamp");
  const std::string* signature = header(headers, "x-ferriskey-signature");
  if (timestamp == nullptr || signature == nullptr) return false;
  std::string signed_content = *timestamp;
  signed_content.append(".").append(body);
  const std::string digest = hmac_sha256(secret, signed_content);
  if (digest.empty()) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string expected;
  expected.reserve(digest.size() * 2);
  for (const char c : digest) {
    const auto byte = static_cast<unsigned char>(c);
    expected.push_back(kHex[byte >> 4]);
    expected.push_back(kHex[byte & 0x0f]);
  }
  return constant_time_equal(*signature, expected);
}

}  // namespace outboxd::test
