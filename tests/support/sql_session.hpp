#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "outboxd/pg/connection.hpp"

namespace outboxd::test {

// A blocking SQL session for test set-up and assertions, over the daemon's own pg::connection
// (so libpq stays behind one wrapper). Throws std::runtime_error with the server's message.
class sql_session {
 public:
  explicit sql_session(std::string url, std::string application_name = "outboxd test");

  pg::result exec(std::string_view sql, std::initializer_list<pg::param> params = {});
  void script(std::string_view sql);
  std::int64_t scalar(std::string_view sql, std::initializer_list<pg::param> params = {});
  // Like exec, but returns the outcome instead of throwing (for asserting on failures).
  pg::outcome try_exec(std::string_view sql, std::initializer_list<pg::param> params = {});

 private:
  boost::asio::io_context io_;
  pg::connection connection_;
};

}  // namespace outboxd::test
