#pragma once

#include <atomic>
#include <boost/asio/ip/address_v4.hpp>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

namespace outboxd::test {

// A minimal authoritative DNS server over UDP, on its own thread, for getaddrinfo to ask: names
// in `answers` get one A record (and an empty answer for any other type), names in `silent` get
// no reply at all (a server that never answers), every other name NXDOMAIN. Names are matched
// lower-cased, without the trailing dot.
//
// It listens on port 53 of `address`, since resolv.conf has no port setting: pass a loopback
// address of its own (127.0.0.0/8 is all loopback), so that nothing else on the machine can be
// on it. Binding port 53 needs root (or CAP_NET_BIND_SERVICE).
class dns_server {
 public:
  dns_server(boost::asio::ip::address_v4 address,
             std::map<std::string, boost::asio::ip::address_v4> answers,
             std::set<std::string> silent);
  ~dns_server();
  dns_server(const dns_server&) = delete;
  dns_server& operator=(const dns_server&) = delete;

  // Empty when listening; otherwise why not.
  const std::string& error() const { return error_; }
  // Queries that arrived for `name`, of any type.
  std::size_t queries(const std::string& name) const;

 private:
  void serve();

  std::map<std::string, boost::asio::ip::address_v4> answers_;
  std::set<std::string> silent_;
  int socket_ = -1;
  std::string error_;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::map<std::string, std::size_t> queries_;
  std::thread thread_;
};

// A loopback address for a DNS server of this process alone: 127.53.x.y from the process id.
boost::asio::ip::address_v4 private_loopback_address();

}  // namespace outboxd::test
