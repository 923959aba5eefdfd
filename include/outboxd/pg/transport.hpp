#pragma once

#include <string>

namespace outboxd::pg {

// How an open session reaches its server, as libpq reports it.
struct session_transport {
  std::string host;        // PQhost: a name, an IP address, or a Unix socket's directory ("/...")
  std::string address;     // PQhostaddr: the IP address connected to; empty on a Unix socket
  bool encrypted = false;  // PQsslInUse
};

// True when the session crosses a network unencrypted: it is not on a Unix socket, not to a
// loopback address, and TLS is not in use. Webhook secrets and event data travel on it, so the
// daemon warns at start (sslmode=require or verify-full is the cure).
bool crosses_network_in_clear(const session_transport& transport);

}  // namespace outboxd::pg
