#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace outboxd::test {

// A TCP forwarder on 127.0.0.1 (port 0: the kernel picks) to put a network between a client and
// a server, on its own thread. stop() is an outage: the listener closes and so does every
// forwarded connection, both sides; start() is the recovery, on the same port. blackhole() is a
// network that swallows everything and closes nothing, so clients find out only by their own
// deadlines. Every call returns once the proxy is in the new state. Bounded: at most
// max_connections at once (more are closed on accept), 16 KiB in flight per direction.
class tcp_proxy {
 public:
  struct options {
    std::size_t max_connections = 256;
  };

  // Resolves the target once, then listens (started).
  tcp_proxy(const std::string& target_host, std::uint16_t target_port);
  tcp_proxy(const std::string& target_host, std::uint16_t target_port, options opts);
  ~tcp_proxy();
  tcp_proxy(const tcp_proxy&) = delete;
  tcp_proxy& operator=(const tcp_proxy&) = delete;

  std::uint16_t port() const;
  std::string host() const { return "127.0.0.1"; }

  // Closes the listener and every forwarded connection. Idempotent.
  void stop();
  // Listens again on the same port (throws std::runtime_error if it was taken meanwhile).
  // Idempotent.
  void start();
  // On: new connections are accepted but never reach the target, and connections already open
  // stop forwarding (what arrives is read and dropped, so nobody sees a full window). Off: new
  // connections forward again; the ones that lost bytes in the blackhole stay open and silent
  // until the client closes them or stop(), since their byte streams are broken anyway.
  void blackhole(bool on);

  bool listening() const;
  std::size_t connections_accepted() const;
  std::size_t open_connections() const;
  std::uint64_t bytes_forwarded() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Host and port of a postgresql://[user@]host:port/... URL.
struct url_endpoint {
  std::string host;
  std::uint16_t port = 0;
};
url_endpoint endpoint_of(const std::string& url);
// The same URL with host:port replaced, e.g. to go through a tcp_proxy.
std::string with_endpoint(const std::string& url, const std::string& host, std::uint16_t port);

}  // namespace outboxd::test
