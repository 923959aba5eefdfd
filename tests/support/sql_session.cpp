#include "support/sql_session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <stdexcept>
#include <vector>

namespace outboxd::test {
namespace asio = boost::asio;

namespace {

template <typename T>
T run_blocking(asio::io_context& io, asio::awaitable<T> task) {
  auto future = asio::co_spawn(io, std::move(task), asio::use_future);
  io.restart();
  io.run();
  return future.get();
}

}  // namespace

sql_session::sql_session(std::string url, std::string application_name)
    : connection_(io_.get_executor()) {
  const pg::connection_options options{.url = std::move(url),
                                       .application_name = std::move(application_name),
                                       .connect_timeout = std::chrono::seconds(10),
                                       .statement_timeout = std::chrono::seconds(120)};
  if (run_blocking(io_, connection_.connect(options))) {
    throw std::runtime_error("test session cannot connect: " + connection_.last_error());
  }
}

pg::outcome sql_session::try_exec(std::string_view sql, std::initializer_list<pg::param> params) {
  // The parameters must outlive the coroutine, which runs to completion inside run_blocking.
  const std::vector<pg::param> copy(params);
  return run_blocking(io_, connection_.execute(sql, std::span<const pg::param>(copy)));
}

pg::result sql_session::exec(std::string_view sql, std::initializer_list<pg::param> params) {
  auto out = try_exec(sql, params);
  if (!out) throw std::runtime_error("SQL failed: " + out.message + "\n  in: " + std::string(sql));
  return std::move(out.rows);
}

void sql_session::script(std::string_view sql) {
  auto out = run_blocking(io_, connection_.execute_script(sql));
  if (!out) throw std::runtime_error("SQL script failed: " + out.message);
}

std::int64_t sql_session::scalar(std::string_view sql, std::initializer_list<pg::param> params) {
  const auto rows = exec(sql, params);
  if (rows.rows() != 1 || rows.columns() < 1) {
    throw std::runtime_error("expected one row from: " + std::string(sql));
  }
  return rows.int64(0, 0);
}

}  // namespace outboxd::test
