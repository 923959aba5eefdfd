#include "outboxd/http/admin_server.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <vector>

#include "outboxd/log.hpp"

namespace outboxd::http {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;  // "http" alone would name outboxd::http here
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("admin_server");
  return *component;
}

// What every session of one server shares.
struct shared_setup {
  admin_server_options options;
  admin_routes routes;
};

using response = bhttp::response<bhttp::string_body>;

admin_reply plain(unsigned status, std::string body) {
  return {.status = status, .body = std::move(body)};
}

// Follows Beast's advanced server: one object per connection, read and write in turn, each
// under the stream's deadline.
class admin_session : public std::enable_shared_from_this<admin_session> {
 public:
  admin_session(tcp::socket&& socket, std::shared_ptr<const shared_setup> setup)
      : stream_(std::move(socket)),
        setup_(std::move(setup)),
        buffer_(setup_->options.max_header_bytes + setup_->options.max_body_bytes) {}

  void run() {
    // The socket was accepted onto its own strand: start there.
    asio::dispatch(stream_.get_executor(),
                   beast::bind_front_handler(&admin_session::do_read, shared_from_this()));
  }

  // From the server's stop(): ends the connection whatever it is doing.
  void close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
      self->stream_.socket().close(ignored);
    });
  }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(setup_->options.max_header_bytes));
    parser_->body_limit(setup_->options.max_body_bytes);
    stream_.expires_after(setup_->options.io_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&admin_session::on_read, shared_from_this()));
  }

  void on_read(error_code ec, std::size_t) {
    if (ec == bhttp::error::end_of_stream) return do_close();
    if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow) {
      return refuse(431, "request header too large\n");
    }
    if (ec == bhttp::error::body_limit) return refuse(413, "request body too large\n");
    // A malformed request gets one answer; a deadline passed (the stream closed itself), a
    // broken socket or the server's stop() end the connection without one.
    if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category()) {
      return refuse(400, "malformed request\n");
    }
    if (ec) return;
    const auto& request = parser_->get();
    respond(request.version(), request.keep_alive(), request.method(), request.target());
  }

  void respond(unsigned version, bool keep_alive, bhttp::verb method, std::string_view target) {
    response_ = {};
    response_.version(version);
    response_.keep_alive(keep_alive);
    const bool head = method == bhttp::verb::head;
    admin_reply reply;
    if (method != bhttp::verb::get && !head) {
      reply = plain(405, "only GET and HEAD\n");
      response_.set(bhttp::field::allow, "GET, HEAD");
    } else {
      reply = route(target.substr(0, target.find('?')));
    }
    response_.result(reply.status);
    response_.set(bhttp::field::content_type, reply.content_type);
    response_.set(bhttp::field::cache_control, "no-store");
    if (head) {
      response_.content_length(reply.body.size());
    } else {
      response_.body() = std::move(reply.body);
      response_.prepare_payload();
    }
    do_write();
  }

  admin_reply route(std::string_view path) const {
    // A route that throws is a bug in the daemon; the scraper still gets an answer.
    try {
      if (path == "/healthz") return plain(200, "ok\n");
      if (path == "/metrics" && setup_->routes.metrics) return setup_->routes.metrics();
      if (path == "/readyz" && setup_->routes.ready) return setup_->routes.ready();
      return plain(404, "not found: try /metrics, /healthz or /readyz\n");
    } catch (const std::exception& e) {
      log().error("admin server: {} failed: {}", path, e.what());
      return plain(500, "internal error\n");
    }
  }

  // An answer to a request that cannot be served, then the connection closes: what is left of
  // that request in the socket cannot be parsed.
  void refuse(unsigned status, std::string body) {
    response_ = {};
    response_.version(11);
    response_.keep_alive(false);
    response_.result(status);
    response_.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    response_.body() = std::move(body);
    response_.prepare_payload();
    do_write();
  }

  void do_write() {
    stream_.expires_after(setup_->options.io_timeout);
    bhttp::async_write(stream_, response_,
                       beast::bind_front_handler(&admin_session::on_write, shared_from_this(),
                                                 response_.keep_alive()));
  }

  void on_write(bool keep_alive, error_code ec, std::size_t) {
    if (ec) return;
    if (!keep_alive) return do_close();
    do_read();
  }

  void do_close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<const shared_setup> setup_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  response response_;
};

}  // namespace

struct admin_server::state : std::enable_shared_from_this<admin_server::state> {
  state(asio::any_io_executor ex, std::shared_ptr<const shared_setup> s)
      : executor(ex), setup(std::move(s)), acceptor(ex) {}

  void do_accept() {
    // Each connection gets its own strand, as in Beast's examples; on the daemon's one thread
    // this costs nothing and keeps the session correct on more.
    acceptor.async_accept(asio::make_strand(executor),
                          beast::bind_front_handler(&state::on_accept, shared_from_this()));
  }

  void on_accept(error_code ec, tcp::socket socket) {
    if (stopped || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors or a connection reset before accept: keep accepting.
      log().debug("admin server: accept failed: {}", ec.message());
    } else {
      std::erase_if(sessions, [](const auto& weak) { return weak.expired(); });
      if (sessions.size() >= setup->options.max_connections) {
        error_code ignored;
        socket.close(ignored);
      } else {
        auto session = std::make_shared<admin_session>(std::move(socket), setup);
        sessions.push_back(session);
        session->run();
      }
    }
    do_accept();
  }

  asio::any_io_executor executor;
  std::shared_ptr<const shared_setup> setup;
  tcp::acceptor acceptor;
  bool stopped = false;
  std::vector<std::weak_ptr<admin_session>> sessions;
};

admin_server::admin_server(asio::any_io_executor executor, admin_server_options options,
                           admin_routes routes)
    : state_(std::make_shared<state>(
          executor, std::make_shared<const shared_setup>(
                        shared_setup{.options = options, .routes = std::move(routes)}))) {}

admin_server::~admin_server() { stop(); }

std::error_code admin_server::listen(const tcp::endpoint& endpoint) {
  auto& acceptor = state_->acceptor;
  error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor.close(ignored);
  }
  return ec;
}

tcp::endpoint admin_server::local_endpoint() const {
  error_code ec;
  return state_->acceptor.local_endpoint(ec);
}

void admin_server::start() { state_->do_accept(); }

void admin_server::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  error_code ignored;
  state_->acceptor.close(ignored);
  for (const auto& weak : state_->sessions) {
    if (auto session = weak.lock()) session->close();
  }
  state_->sessions.clear();
}

listen_address parse_listen_address(std::string_view text) {
  const auto bad = [text](std::string_view why) {
    return listen_address{
        .problem = fmt::format("--admin-address must be host:port with an IP address "
                               "(\"127.0.0.1:9187\", \"[::1]:9187\", port 0 for any free port) or "
                               "off, not '{}': {}",
                               text, why)};
  };
  if (text == "off") return {};
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("an IPv6 address in brackets must be followed by :port");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad("no port");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return bad("put an IPv6 address in brackets");
  }
  error_code ec;
  const auto address = asio::ip::make_address(std::string(host), ec);
  if (ec) return bad("the host is not an IP address");
  unsigned value = 0;
  const auto [end, parse_ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || parse_ec != std::errc{} || end != port.data() + port.size() ||
      value > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  return {.endpoint = tcp::endpoint(address, static_cast<unsigned short>(value))};
}

std::string to_string(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address().to_string();
  return endpoint.address().is_v6() ? fmt::format("[{}]:{}", address, endpoint.port())
                                    : fmt::format("{}:{}", address, endpoint.port());
}

}  // namespace outboxd::http
