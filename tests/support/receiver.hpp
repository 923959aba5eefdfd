#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/test_pki.hpp"

namespace outboxd::test {

// How the receiver answers one request.
struct reaction {
  enum class kind {
    respond,  // status + body (+ Retry-After / Location when set)
    hang,     // read the request, never answer (until the client gives up)
    reset,    // read the request, then reset the TCP connection (RST, SO_LINGER 0)
    dribble,  // answer status + body one byte every dribble_interval
    endless,  // answer status with a chunked body that never ends (bounded: stops after 30 s)
    // Hostile receivers (bounded as endless is):
    endless_headers,  // a status line, then header lines that never end
    huge_length,      // declare Content-Length: declared_length, then send body bytes forever
    truncate,         // declare twice the body's length, send the body, close the connection
    interim_flood,    // interim_responses "100 Continue" heads, then the response
  };
  kind what = kind::respond;
  int status = 200;
  std::string body = "ok";
  std::optional<std::string> retry_after;
  std::optional<std::string> location;
  std::chrono::milliseconds dribble_interval{200};
  std::chrono::milliseconds delay{0};  // respond: wait this long before answering
  std::vector<std::pair<std::string, std::string>> headers;  // more response headers (respond)
  std::uint64_t declared_length = 10ULL << 30;               // huge_length: 10 GiB
  int interim_responses = 1000;                              // interim_flood

  static reaction ok() { return {}; }
  static reaction with_status(int status) { return {.status = status, .body = "status"}; }
};

struct received_request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::chrono::steady_clock::time_point received_at;
  std::string client_subject;  // TLS: the CN of the client's certificate, empty without one
};

// A real HTTP/1.1 server on 127.0.0.1 (on options.port, or one the kernel picks), with keep-alive,
// on its own thread; optionally TLS with a certificate for "localhost" and 127.0.0.1 signed by a
// throwaway CA (ca_file()) or the one it is given. Records every request and answers per path with
// scripted reactions.
class receiver {
 public:
  struct options {
    bool tls = false;
    std::uint16_t port = 0;  // 0: any free port
    // tls: the server's certificate and key; by default one issued by the receiver's own CA.
    std::optional<pem_identity> identity;
    // tls: PEM of the CA whose certificate every client must present (mTLS); empty for none.
    std::string client_ca;
    bool tls_1_1_only = false;  // tls: a legacy server that speaks TLS 1.1 and nothing newer
    // false: requests are answered but not kept (requests() and count() see none), for a
    // long-running receiver whose caller records what it needs in react_with.
    bool keep_requests = true;
  };
  receiver();
  explicit receiver(options opts);
  ~receiver();
  receiver(const receiver&) = delete;
  receiver& operator=(const receiver&) = delete;

  std::uint16_t port() const;
  // "http://127.0.0.1:PORT/path" (https:// with tls).
  std::string url(std::string_view path = "/hook") const;
  // PEM file of the CA that signed the TLS certificate (tls without options.identity only).
  std::string ca_file() const;

  // Requests to `path` get `sequence` in order, then `then` forever. Default: 200 "ok".
  void react(std::string_view path, std::vector<reaction> sequence, reaction then = reaction::ok());
  // Requests to `path` get what `decide` says about each. It is called under the receiver's lock,
  // one request at a time, so it may keep state (e.g. answer each message's first attempt
  // differently); it must not call back into the receiver.
  void react_with(std::string_view path, std::function<reaction(const received_request&)> decide);

  // Snapshot of what arrived, oldest first; all paths when `path` is empty.
  std::vector<received_request> requests(std::string_view path = {}) const;
  std::size_t count(std::string_view path = {}) const;
  // Waits (condition variable, no polling) until at least n requests arrived.
  bool wait_for_count(std::size_t n, std::chrono::milliseconds timeout,
                      std::string_view path = {}) const;
  // TCP connections accepted so far (to see keep-alive reuse).
  std::size_t connections_accepted() const;
  // The most requests (to `path`; all paths when empty) being answered at the same moment, from
  // arrival until the response is written or the connection ends.
  std::size_t max_concurrent(std::string_view path = {}) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Signature checks written independently of outboxd's signer (OpenSSL used directly), as a
// receiver would. `headers` names are lower-case.
bool verify_standard_webhooks(std::string_view secret,
                              const std::map<std::string, std::string>& headers,
                              std::string_view body);
bool verify_ferriskey(std::string_view secret, const std::map<std::string, std::string>& headers,
                      std::string_view body);

}  // namespace outboxd::test
