#include "outboxd/pg/connection.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

namespace outboxd::pg {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {


std::string trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

connection::connection(asio::any_io_executor executor)
    : executor_(std::move(executor)), timer_(executor_) {}

connection::~connection() { close(); }

bool connection::is_open() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

void connection::close() {
  if (socket_) {
    // The socket belongs to libpq: hand it back rather than letting Asio close it. Pending waits
    // complete with operation_aborted.
    socket_->release();
    socket_.reset();
  }
  timer_.cancel();
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
}

std::error_code connection::fail(errc code, std::string message) {
  last_error_ = std::move(message);
  if (code != errc::query_failed) close();
  return code;
}

void connection::attach_socket() {
  if (socket_) {
    socket_->release();
    socket_.reset();
  }
  const int fd = PQsocket(conn_);
  if (fd >= 0) socket_.emplace(executor_, fd);
}

clock::time_point connection::query_deadline() const {
  return clock::now() + options_.statement_timeout + kClientDeadlineSlack;
}

asio::awaitable<std::error_code> connection::wait_socket(wait_type what,
                                                         clock::time_point deadline) {
  if (!socket_) co_return errc::closed;
  // The timer cancels the socket wait at the deadline. A timer handler that runs late (after the
  // wait ended another way) sees a newer generation, or a dead connection, and does nothing.
  const auto generation = ++wait_generation_;
  timed_out_ = false;
  timer_.expires_at(deadline);
  timer_.async_wait(
      [this, generation, alive = std::weak_ptr<int>(alive_)](const boost::system::error_code& ec) {
        if (ec || alive.expired() || generation != wait_generation_ || !socket_) return;
        timed_out_ = true;
        socket_->cancel();
      });
  const auto [socket_error] =
      co_await socket_->async_wait(what, asio::as_tuple(asio::use_awaitable));
  timer_.cancel();
  if (!conn_ || !socket_) co_return errc::closed;
  if (timed_out_) co_return errc::timeout;
  if (socket_error) co_return errc::connection_lost;
  co_return std::error_code{};
}

asio::awaitable<std::error_code> connection::connect(const connection_options& options) {
  close();
  options_ = options;
  last_error_.clear();
  const auto deadline = clock::now() + options.connect_timeout;

  // The URL is expanded first; the keywords after it override or complete it.
  const std::string keepalive_idle = "30";
  const char* keys[] = {"dbname",
                        "application_name",
                        "keepalives",
                        "keepalives_idle",
                        "keepalives_interval",
                        "keepalives_count",
                        nullptr};
  const char* values[] = {options.url.c_str(),
                          options.application_name.c_str(),
                          "1",
                          keepalive_idle.c_str(),
                          "10",
                          "3",
                          nullptr};
  conn_ = PQconnectStartParams(keys, values, /*expand_dbname=*/1);
  if (!conn_) co_return fail(errc::connect_failed, "out of memory");
  if (PQstatus(conn_) == CONNECTION_BAD) {
    co_return fail(errc::connect_failed, trimmed(PQerrorMessage(conn_)));
  }

  for (;;) {
    const auto state = PQconnectPoll(conn_);
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) {
      co_return fail(errc::connect_failed, trimmed(PQerrorMessage(conn_)));
    }
    // libpq may move to another socket between polls (several hosts or addresses), so the
    // descriptor is wrapped afresh each time.
    attach_socket();
    const auto what = state == PGRES_POLLING_READING ? asio::posix::descriptor_base::wait_read
                                                     : asio::posix::descriptor_base::wait_write;
    const auto ec = co_await wait_socket(what, deadline);
    if (ec) {
      if (ec == errc::closed) co_return ec;
      co_return fail(errc::connect_failed, ec == errc::timeout
                                               ? "timed out connecting to PostgreSQL"
                                               : trimmed(PQerrorMessage(conn_)));
    }
  }

  // Server notices ("schema already exists, skipping") are for debugging, not for stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char* message) { spdlog::debug("postgres: {}", trimmed(message)); },
      nullptr);
  if (PQsetnonblocking(conn_, 1) != 0) {
    co_return fail(errc::connect_failed, trimmed(PQerrorMessage(conn_)));
  }
  attach_socket();

  const auto timeout_ms = std::to_string(options.statement_timeout.count());
  const auto settings = co_await execute(
      "SELECT set_config('statement_timeout', $1, false),"
      "       set_config('idle_in_transaction_session_timeout', $1, false)",
      std::string_view(timeout_ms));
  if (!settings) {
    if (settings.error == errc::closed) co_return settings.error;
    co_return fail(errc::connect_failed, settings.message);
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> connection::ensure_connected(const connection_options& options) {
  if (is_open()) co_return std::error_code{};
  co_return co_await connect(options);
}

asio::awaitable<outcome> connection::execute(std::string_view sql, std::span<const param> params) {
  if (!is_open()) {
    co_return outcome{.error = errc::connection_lost, .message = "not connected"};
  }
  // libpq wants NUL-terminated strings.
  const std::string statement(sql);
  std::vector<std::string> storage;
  storage.reserve(params.size());
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) {
    if (p) {
      values.push_back(storage.emplace_back(*p).c_str());
    } else {
      values.push_back(nullptr);
    }
  }
  if (!PQsendQueryParams(conn_, statement.c_str(), static_cast<int>(values.size()), nullptr,
                         values.data(), nullptr, nullptr, 0)) {
    const auto message = trimmed(PQerrorMessage(conn_));
    co_return outcome{.error = fail(errc::connection_lost, message), .message = message};
  }
  co_return co_await flush_and_collect(query_deadline());
}

asio::awaitable<outcome> connection::execute_script(std::string_view sql,
                                                    std::optional<clock::time_point> deadline) {
  if (!is_open()) {
    co_return outcome{.error = errc::connection_lost, .message = "not connected"};
  }
  const std::string script(sql);
  if (!PQsendQuery(conn_, script.c_str())) {
    const auto message = trimmed(PQerrorMessage(conn_));
    co_return outcome{.error = fail(errc::connection_lost, message), .message = message};
  }
  co_return co_await flush_and_collect(deadline.value_or(query_deadline()));
}

asio::awaitable<outcome> connection::flush_and_collect(clock::time_point deadline) {
  outcome out;
  // Any failure of the transport closes the session; only a statement error leaves it usable.
  const auto lost = [&](std::error_code code) {
    std::string message = code == errc::timeout
                              ? "statement did not finish before the client deadline"
                              : trimmed(conn_ ? PQerrorMessage(conn_) : "connection closed");
    if (code != errc::closed) fail(static_cast<errc>(code.value()), message);
    return outcome{.error = code, .message = std::move(message)};
  };

  // Push the query out; a large statement may not fit the socket buffer at once.
  for (;;) {
    const int pending = PQflush(conn_);
    if (pending == 0) break;
    if (pending < 0) co_return lost(errc::connection_lost);
    const auto ec = co_await wait_socket(asio::posix::descriptor_base::wait_write, deadline);
    if (ec) {
      co_return lost(ec);
    }
  }

  // Read every result of the statement(s): keep the last one, or the first error.
  for (;;) {
    while (!PQisBusy(conn_)) {
      PGresult* raw = PQgetResult(conn_);
      if (!raw) {
        // The query is over. A FATAL error (pg_terminate_backend, server shutdown) arrives as a
        // result and then the session is gone: report that as a lost connection.
        if (PQstatus(conn_) == CONNECTION_BAD) {
          const auto message = out.message.empty() ? trimmed(PQerrorMessage(conn_)) : out.message;
          fail(errc::connection_lost, message);
          co_return outcome{
              .error = errc::connection_lost, .message = message, .sqlstate = out.sqlstate};
        }
        co_return out;
      }
      result owned(raw);
      switch (PQresultStatus(raw)) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_EMPTY_QUERY:
          if (!out.error) out.rows = std::move(owned);
          break;
        default:
          if (!out.error) {
            out.error = errc::query_failed;
            out.message = trimmed(PQresultErrorMessage(raw));
            const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
            out.sqlstate = state ? state : "";
            const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
            out.primary = primary ? primary : "";
            out.rows = result{};
          }
          break;
      }
    }
    const auto ec = co_await wait_socket(asio::posix::descriptor_base::wait_read, deadline);
    if (ec) {
      co_return lost(ec);
    }
    if (!PQconsumeInput(conn_)) co_return lost(errc::connection_lost);
  }
}

asio::awaitable<std::error_code> connection::wait_for_input(clock::time_point deadline) {
  // Callers take every queued notification first (take_notification parses what libpq already
  // read), so waiting on the socket cannot strand one in libpq's buffer.
  if (!is_open()) co_return errc::connection_lost;
  const auto ec = co_await wait_socket(asio::posix::descriptor_base::wait_read, deadline);
  if (ec) {
    if (ec == errc::timeout || ec == errc::closed) co_return ec;
    co_return fail(errc::connection_lost, trimmed(PQerrorMessage(conn_)));
  }
  if (!PQconsumeInput(conn_) || PQstatus(conn_) == CONNECTION_BAD) {
    co_return fail(errc::connection_lost, trimmed(PQerrorMessage(conn_)));
  }
  co_return std::error_code{};
}

std::optional<notification> connection::take_notification() {
  if (!conn_) return std::nullopt;
  PGnotify* raw = PQnotifies(conn_);
  if (!raw) return std::nullopt;
  notification out{raw->relname ? raw->relname : "", raw->extra ? raw->extra : ""};
  PQfreemem(raw);
  return out;
}

int connection::backend_pid() const { return conn_ ? PQbackendPID(conn_) : 0; }

bool connection::in_failed_transaction() const {
  return conn_ && PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

std::string connection::quote_identifier(std::string_view identifier) const {
  if (!conn_) return {};
  char* quoted = PQescapeIdentifier(conn_, identifier.data(), identifier.size());
  if (!quoted) return {};
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

}  // namespace outboxd::pg
