#pragma once

#include <string_view>
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

// Could one row of a statement, or one entry of a batch, cause this SQLSTATE: a data exception
// (22), an integrity violation (23), a program limit such as a value too large (54)? Only then is
// a failed batch split to find that row. Everything else (connection, timeout, deadlock, locks,
// resources, an undefined table, a trigger refusing every write) says nothing about a row, and
// splitting would only set good rows aside.
bool is_row_error(std::string_view sqlstate);

}  // namespace outboxd::pg

template <>
struct std::is_error_code_enum<outboxd::pg::errc> : std::true_type {};
