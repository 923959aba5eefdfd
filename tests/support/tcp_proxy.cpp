#include "support/tcp_proxy.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace outboxd::test {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::size_t kBufferBytes = 16 * 1024;
// How long a call waits for the proxy's thread to carry it out.
constexpr auto kCallTimeout = std::chrono::seconds(10);
// After a failed accept (out of descriptors, say), wait this long before the next.
constexpr auto kAcceptRetry = std::chrono::milliseconds(20);

// Every descriptor is close-on-exec: a test that forks the daemon after starting the proxy must
// not hand it a copy of the listening socket, which would keep the port open through stop().
template <typename Socket>
void open_cloexec(Socket& socket, error_code& ec) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ec = error_code(errno, boost::system::system_category());
    return;
  }
  socket.assign(tcp::v4(), fd, ec);
}

// accept() makes descriptors without the flag; set it at once (a fork in between is unlikely).
void set_cloexec(tcp::socket& socket) {
  const int fd = socket.native_handle();
  ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
}

}  // namespace

struct tcp_proxy::impl {
  struct session;

  options opts;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  tcp::endpoint target;
  tcp::acceptor acceptor{io};
  asio::steady_timer accept_retry{io};
  std::uint16_t port = 0;
  // The rest is touched on the proxy's thread only, except the counters.
  bool blackholed = false;
  std::set<std::shared_ptr<session>> sessions;
  std::atomic<bool> is_listening{false};
  std::atomic<std::size_t> accepted{0};
  std::atomic<std::size_t> open{0};
  std::atomic<std::uint64_t> forwarded{0};
  std::thread thread;

  struct session : std::enable_shared_from_this<session> {
    impl& owner;
    tcp::socket client;
    tcp::socket upstream;
    std::array<char, kBufferBytes> to_upstream{};
    std::array<char, kBufferBytes> to_client{};
    bool closed = false;
    bool dead = false;  // lost bytes in a blackhole: never forwards again

    session(impl& o, tcp::socket accepted_socket)
        : owner(o), client(std::move(accepted_socket)), upstream(o.io) {}

    void begin() {
      if (owner.blackholed) {
        dead = true;
        pump(client, upstream, to_upstream);
        return;
      }
      error_code open_ec;
      open_cloexec(upstream, open_ec);
      if (open_ec) {
        close();
        return;
      }
      upstream.async_connect(owner.target, [self = shared_from_this()](const error_code& ec) {
        if (ec || self->closed) {
          self->close();
          return;
        }
        self->pump(self->client, self->upstream, self->to_upstream);
        self->pump(self->upstream, self->client, self->to_client);
      });
    }

    // Reads from `from` and writes to `to`, one buffer at a time; in a blackhole, drops it.
    void pump(tcp::socket& from, tcp::socket& to, std::array<char, kBufferBytes>& buffer) {
      from.async_read_some(asio::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer](
                                                     const error_code& ec, std::size_t n) {
        if (ec || self->closed) {
          self->close();
          return;
        }
        if (self->owner.blackholed || self->dead) {
          self->dead = true;
          self->pump(from, to, buffer);
          return;
        }
        asio::async_write(
            to, asio::buffer(buffer.data(), n),
            [self, &from, &to, &buffer](const error_code& write_ec, std::size_t written) {
              if (write_ec || self->closed) {
                self->close();
                return;
              }
              self->owner.forwarded += written;
              self->pump(from, to, buffer);
            });
      });
    }

    void close() {
      if (closed) return;
      closed = true;
      error_code ignored;
      client.shutdown(tcp::socket::shutdown_both, ignored);
      client.close(ignored);
      upstream.shutdown(tcp::socket::shutdown_both, ignored);
      upstream.close(ignored);
      --owner.open;
      owner.sessions.erase(shared_from_this());
    }
  };

  // Runs `f` on the proxy's thread and waits for it; its exception is rethrown here.
  void call(std::function<void()> f) {
    if (std::this_thread::get_id() == thread.get_id()) {
      f();
      return;
    }
    auto done = std::make_shared<std::promise<void>>();
    auto result = done->get_future();
    asio::post(io, [done, f = std::move(f)] {
      try {
        f();
        done->set_value();
      } catch (...) {
        done->set_exception(std::current_exception());
      }
    });
    if (result.wait_for(kCallTimeout) != std::future_status::ready) {
      throw std::runtime_error("tcp_proxy: its thread did not answer in time");
    }
    result.get();
  }

  void listen() {
    if (acceptor.is_open()) return;
    const tcp::endpoint local(asio::ip::make_address_v4("127.0.0.1"), port);
    error_code ec;
    open_cloexec(acceptor, ec);
    // The port's old connections may sit in TIME_WAIT; that must not stop a restart.
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(local, ec);
    if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acceptor.close(ignored);
      throw std::runtime_error("tcp_proxy: cannot listen on 127.0.0.1:" + std::to_string(port) +
                               ": " + ec.message());
    }
    port = acceptor.local_endpoint().port();
    is_listening = true;
    accept();
  }

  void accept() {
    acceptor.async_accept([this](const error_code& ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;
      if (ec) {
        accept_retry.expires_after(kAcceptRetry);
        accept_retry.async_wait([this](const error_code& timer_ec) {
          if (!timer_ec && acceptor.is_open()) accept();
        });
        return;
      }
      ++accepted;
      set_cloexec(socket);
      if (sessions.size() >= opts.max_connections) {
        error_code ignored;
        socket.close(ignored);
      } else {
        auto s = std::make_shared<session>(*this, std::move(socket));
        sessions.insert(s);
        ++open;
        s->begin();
      }
      accept();
    });
  }

  void shut() {
    error_code ignored;
    is_listening = false;
    acceptor.close(ignored);
    accept_retry.cancel();
    const std::vector<std::shared_ptr<session>> all(sessions.begin(), sessions.end());
    for (const auto& s : all) s->close();
  }
};

tcp_proxy::tcp_proxy(const std::string& target_host, std::uint16_t target_port)
    : tcp_proxy(target_host, target_port, options{}) {}

tcp_proxy::tcp_proxy(const std::string& target_host, std::uint16_t target_port, options opts)
    : impl_(std::make_unique<impl>()) {
  impl_->opts = opts;
  tcp::resolver resolver(impl_->io);
  const auto found = resolver.resolve(target_host, std::to_string(target_port));
  if (found.empty()) throw std::runtime_error("tcp_proxy: cannot resolve " + target_host);
  impl_->target = found.begin()->endpoint();
  impl_->listen();
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

tcp_proxy::~tcp_proxy() {
  try {
    impl_->call([this] { impl_->shut(); });
  } catch (...) {
    // The thread is stuck: stopping the context below still ends it.
  }
  impl_->work.reset();
  impl_->io.stop();
  impl_->thread.join();
}

std::uint16_t tcp_proxy::port() const { return impl_->port; }

void tcp_proxy::stop() {
  impl_->call([this] { impl_->shut(); });
}

void tcp_proxy::start() {
  impl_->call([this] { impl_->listen(); });
}

void tcp_proxy::blackhole(bool on) {
  impl_->call([this, on] { impl_->blackholed = on; });
}

bool tcp_proxy::listening() const { return impl_->is_listening; }
std::size_t tcp_proxy::connections_accepted() const { return impl_->accepted; }
std::size_t tcp_proxy::open_connections() const { return impl_->open; }
std::uint64_t tcp_proxy::bytes_forwarded() const { return impl_->forwarded; }

url_endpoint endpoint_of(const std::string& url) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) throw std::invalid_argument("expected a postgresql:// URL");
  auto begin = scheme + 3;
  const auto end = url.find_first_of("/?", begin);
  std::string authority = url.substr(begin, end == std::string::npos ? end : end - begin);
  const auto at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  const auto colon = authority.rfind(':');
  if (colon == std::string::npos) return {authority, 5432};
  return {authority.substr(0, colon),
          static_cast<std::uint16_t>(std::stoi(authority.substr(colon + 1)))};
}

std::string with_endpoint(const std::string& url, const std::string& host, std::uint16_t port) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) throw std::invalid_argument("expected a postgresql:// URL");
  const auto begin = scheme + 3;
  const auto end = std::min(url.find_first_of("/?", begin), url.size());
  const auto at = url.rfind('@', end);
  const auto host_begin = at == std::string::npos || at < begin ? begin : at + 1;
  return url.substr(0, host_begin) + host + ":" + std::to_string(port) + url.substr(end);
}

}  // namespace outboxd::test
