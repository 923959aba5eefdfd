#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace outboxd::http {

// What a route answers.
struct admin_reply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// The routes whose answers come from the daemon. /healthz is the server's own: that it answers at
// all shows the event loop runs. A route is called on the daemon's thread and must not block.
struct admin_routes {
  std::function<admin_reply()> metrics;  // GET /metrics
  std::function<admin_reply()> ready;    // GET /readyz
};

struct admin_server_options {
  // A request must arrive whole within this, and a response be written within it; an idle
  // keep-alive connection is closed after it too.
  std::chrono::milliseconds io_timeout{10'000};
  std::size_t max_header_bytes = 8 * 1024;  // larger: 431, and the connection is closed
  std::size_t max_body_bytes = 1024;        // GET and HEAD carry none; larger: 413, closed
  std::size_t max_connections = 64;         // more are closed at once on accept
};

// --admin-address: "host:port" with an IP address (IPv6 in brackets, "[::1]:9187"), port 0 for any
// free port; "off" for no admin server. On a bad value, `problem` says why.
struct listen_address {
  std::optional<boost::asio::ip::tcp::endpoint> endpoint;
  std::string problem;
};
listen_address parse_listen_address(std::string_view text);
// "127.0.0.1:9187", "[::1]:9187".
std::string to_string(const boost::asio::ip::tcp::endpoint& endpoint);

// The operators' HTTP endpoint (metrics, health), on Boost.Beast as the webhook client is: one
// acceptor and one session object per connection on its own strand, every read and write under
// a deadline, request size bounded, GET and HEAD only. Errors are error_codes: no exception leaves
// a completion handler.
class admin_server {
 public:
  admin_server(boost::asio::any_io_executor executor, admin_server_options options,
               admin_routes routes);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

  // Opens, binds and listens (no accept yet). On failure, what() of the error says why.
  std::error_code listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // The bound address, with the real port when 0 was asked for.
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  void start();
  // Closes the acceptor and every open connection, so the event loop can end.
  void stop();

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace outboxd::http
