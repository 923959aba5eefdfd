#include "outboxd/admin/session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <iostream>
#include <span>

namespace outboxd::admin {
namespace asio = boost::asio;

namespace {

// Plain functions, not capturing lambdas: a lambda coroutine's captures die with the lambda.
asio::awaitable<std::error_code> connect_session(pg::connection& connection,
                                                 pg::connection_options options) {
  co_return co_await connection.connect(options);
}

asio::awaitable<pg::outcome> execute_statement(pg::connection& connection, std::string_view sql,
                                               const std::vector<pg::param>& params) {
  const std::span<const pg::param> values(params.data(), params.size());
  co_return co_await connection.execute(sql, values);
}

template <typename T>
T run_until_done(asio::io_context& io, asio::awaitable<T> work) {
  auto result = asio::co_spawn(io, std::move(work), asio::use_future);
  io.restart();
  io.run();
  return result.get();
}

}  // namespace

session::session(const database_config& database, std::string application_name)
    : connection_(io_.get_executor()) {
  const auto options = database.connection(std::move(application_name));
  const auto error = run_until_done(io_, connect_session(connection_, options));
  if (error) {
    throw command_failed("cannot connect to PostgreSQL: " + connection_.last_error());
  }
}

pg::outcome session::execute(std::string_view sql, std::vector<pg::param> params) {
  return run_until_done(io_, execute_statement(connection_, sql, params));
}

pg::result session::query(std::string_view sql, std::vector<pg::param> params) {
  auto out = execute(sql, std::move(params));
  if (!out) throw command_failed(out.message);
  return std::move(out.rows);
}

int run_command(std::string_view name, int (*body)(const std::vector<std::string>&),
                const std::vector<std::string>& args) {
  try {
    return body(args);
  } catch (const command_failed& e) {
    std::cerr << "outboxd " << name << ": " << e.what() << "\n";
    return kExitFailed;
  }
}

}  // namespace outboxd::admin
