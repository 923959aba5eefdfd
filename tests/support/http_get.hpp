#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace outboxd::test {

struct http_reply {
  int status = 0;                              // 0: no response; `error` says why
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string error;

  // The header's value; empty when absent. `name` in lower case.
  std::string header(const std::string& name) const {
    const auto found = headers.find(name);
    return found == headers.end() ? std::string() : found->second;
  }
};

// One request on a new connection to 127.0.0.1:port, every step bounded by `timeout` (socket
// send and receive timeouts). HEAD reads no body.
http_reply http_request(std::uint16_t port, const std::string& method, const std::string& target,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));
inline http_reply http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, "GET", target);
}

// A POST with these headers ({name, value} pairs, sent as given) and body, the same way.
http_reply http_post(std::uint16_t port, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers,
                     const std::string& body,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Sets SO_RCVTIMEO and SO_SNDTIMEO on a socket, so blocking calls on it cannot hang a test.
void bound_socket_io(int fd, std::chrono::milliseconds timeout);

}  // namespace outboxd::test
