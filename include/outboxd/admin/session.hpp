#pragma once

#include <boost/asio/io_context.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "outboxd/config.hpp"
#include "outboxd/pg/connection.hpp"

namespace outboxd::admin {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;  // the command ran and failed (database, unknown id, ...)
inline constexpr int kExitUsage = 2;   // bad flags or arguments: nothing was touched

// A failure once the command runs (exit 1); bad usage is config_error (exit 2).
class command_failed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The admin commands' blocking session over the daemon's own pg::connection: each statement runs
// the session's io_context until it completes, as `outboxd migrate` does. Every statement runs
// under the configured statement timeout.
class session {
 public:
  // Connects; throws command_failed with libpq's one-line reason.
  session(const database_config& database, std::string application_name);
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  // Throws command_failed with the server's one-line message.
  pg::result query(std::string_view sql, std::vector<pg::param> params = {});
  // Returns the outcome, for callers that tell one SQLSTATE from another.
  pg::outcome execute(std::string_view sql, std::vector<pg::param> params = {});

 private:
  boost::asio::io_context io_;
  pg::connection connection_;
};

// Runs one admin command: its failures (command_failed) are printed as "outboxd <name>: ..." and
// exit 1; config_error goes to the caller, which prints it and exits 2.
int run_command(std::string_view name, int (*body)(const std::vector<std::string>&),
                const std::vector<std::string>& args);

}  // namespace outboxd::admin
