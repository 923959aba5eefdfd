#pragma once

#include <system_error>

namespace outboxd::pg {

// What can go wrong talking to PostgreSQL. Details (server message, SQLSTATE) travel beside the
// code in pg::outcome; the code is what callers branch on.
enum class errc {
  connect_failed = 1,  // could not establish a session (refused, auth, bad DSN, ...)
  connection_lost,     // the session broke: server restart, pg_terminate_backend, network
  timeout,             // our own deadline expired; the connection is closed
  query_failed,        // the server rejected the statement; the session is still usable
  closed,              // the connection was closed locally (shutdown) while waiting
};

const std::error_category& error_category();
std::error_code make_error_code(errc e);

// The session, not the statement, failed (connect_failed, connection_lost, timeout, closed):
// retrying on a new session is the cure, and outage_log already tells operators about it.
bool is_connection_error(std::error_code ec);

}  // namespace outboxd::pg

template <>
struct std::is_error_code_enum<outboxd::pg::errc> : std::true_type {};
