#include "outboxd/pg/connection.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <initializer_list>
#include <string>
#include <string_view>

#include "outboxd/log.hpp"
#include "outboxd/pg/outage_log.hpp"
#include "outboxd/pg/redaction.hpp"

namespace outboxd::pg {
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("pg");
  return *component;
}

// Messages end up in log lines and in outcome.message: one line each, bounded.
constexpr std::size_t kMaxMessageBytes = 512;

// Cuts to at most `limit` bytes without splitting a UTF-8 sequence.
std::string bounded(std::string text, std::size_t limit = kMaxMessageBytes) {
  if (text.size() <= limit) return text;
  std::size_t cut = limit - 3;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  text += "...";
  return text;
}

bool starts_with_any(std::string_view line, std::initializer_list<std::string_view> prefixes) {
  for (const auto prefix : prefixes) {
    if (line.starts_with(prefix)) return true;
  }
  return false;
}

// libpq's messages span several lines ("...failed: Connection refused\n\tIs the server
// running...?\n") and, when they relay a server error, carry its DETAIL and CONTEXT lines, which
// can quote row data ("Failing row contains (...)"). Those lines are dropped; the rest is joined
// with "; ", other control characters become spaces, and the result is bounded.
std::string one_line(const char* message) {
  const std::string_view text = message ? message : "";
  std::string out;
  std::size_t begin = 0;
  while (begin <= text.size()) {
    auto end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(begin, end - begin);
    begin = end + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.find_first_not_of('^') == std::string_view::npos) continue;
    if (starts_with_any(line, {"DETAIL:", "CONTEXT:", "QUERY:", "LINE ", "WHERE:"})) continue;
    if (!out.empty()) out += "; ";
    out += line;
    if (out.size() > kMaxMessageBytes) break;
  }
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  return bounded(std::move(out));
}

// The server's primary message, safe to log and store: a data exception's (class 22) quotes the
// rejected input, which is event or row data ('invalid input syntax for type uuid: "..."', 'value
// "..." is out of range for type integer'); every quoted part of it is replaced by "...". The one
// place PostgreSQL's words are redacted: outcome.message and outcome.primary both come from here.
std::string redacted_primary(const char* state, const char* primary) {
  std::string text = primary ? primary : "";
  if (!state || !std::string_view(state).starts_with("22")) return text;
  std::string out;
  bool quoted = false;
  for (const char c : text) {
    if (c == '"') {
      out += quoted ? "...\"" : "\"";
      quoted = !quoted;
    } else if (!quoted) {
      out += c;
    }
  }
  if (quoted) out += "...\"";  // an unbalanced quote: everything after it was dropped
  return out;
}

// A statement error from the result's fields: "ERROR: <primary message> (SQLSTATE 23502)". The
// primary message names the problem and the constraint, column or type; DETAIL ("Key (id)=(42)
// already exists", "Failing row contains (...)") and CONTEXT can quote row data and are left out.
std::string statement_error(const PGresult* raw) {
  const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
  // A result libpq made up itself (out of memory, lost protocol sync) has no fields.
  if (!primary) return one_line(PQresultErrorMessage(raw));
  const char* severity = PQresultErrorField(raw, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (!severity) severity = PQresultErrorField(raw, PG_DIAG_SEVERITY);
  const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
  const std::string text = redacted_primary(state, primary);
  std::string out = severity ? std::string(severity) + ": " : std::string();
  out += one_line(text.c_str());
  out = bounded(std::move(out), kMaxMessageBytes - 20);
  if (state) out += std::string(" (SQLSTATE ") + state + ")";
  return out;
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
  // Connect errors are where libpq quotes the connection string; lost-session errors never do,
  // but the check costs nothing.
  last_error_ = without_credentials(std::move(message), options_.url);
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
  const auto ec = co_await open_session(options);
  if (!ec) {
    if (connected_before_) ++reconnects_;
    connected_before_ = true;
  }
  // closed: shut down locally while connecting, which says nothing about the server.
  if (options_.outage && ec != errc::closed) {
    if (ec) {
      options_.outage->failed(options_.application_name, last_error_);
    } else {
      options_.outage->recovered();
    }
  }
  co_return ec;
}

asio::awaitable<std::error_code> connection::open_session(const connection_options& options) {
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
    co_return fail(errc::connect_failed, one_line(PQerrorMessage(conn_)));
  }

  for (;;) {
    const auto state = PQconnectPoll(conn_);
    if (state == PGRES_POLLING_OK) break;
    if (state == PGRES_POLLING_FAILED) {
      co_return fail(errc::connect_failed, one_line(PQerrorMessage(conn_)));
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
                                               : one_line(PQerrorMessage(conn_)));
    }
  }

  // Server notices ("schema already exists, skipping") are for debugging, not for stderr.
  PQsetNoticeProcessor(
      conn_, [](void*, const char* message) { log().debug("postgres: {}", one_line(message)); },
      nullptr);
  if (PQsetnonblocking(conn_, 1) != 0) {
    co_return fail(errc::connect_failed, one_line(PQerrorMessage(conn_)));
  }
  attach_socket();

  const auto timeout_ms = std::to_string(options.statement_timeout.count());
  const auto lock_timeout_ms = std::to_string(options.lock_timeout.count());
  const auto settings = co_await execute(
      "SELECT set_config('statement_timeout', $1, false),"
      "       set_config('idle_in_transaction_session_timeout', $1, false),"
      "       set_config('lock_timeout', $2, false)",
      std::string_view(timeout_ms), std::string_view(lock_timeout_ms));
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
    const auto message = one_line(PQerrorMessage(conn_));
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
    const auto message = one_line(PQerrorMessage(conn_));
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
                              : one_line(conn_ ? PQerrorMessage(conn_) : "connection closed");
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
          const auto message = out.message.empty() ? one_line(PQerrorMessage(conn_)) : out.message;
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
            out.message = statement_error(raw);
            const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
            out.sqlstate = state ? state : "";
            out.primary = one_line(
                redacted_primary(state, PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY)).c_str());
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
    co_return fail(errc::connection_lost, one_line(PQerrorMessage(conn_)));
  }
  if (!PQconsumeInput(conn_) || PQstatus(conn_) == CONNECTION_BAD) {
    co_return fail(errc::connection_lost, one_line(PQerrorMessage(conn_)));
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

session_transport connection::transport() const {
  if (!conn_) return {};
  const auto text = [](const char* value) { return std::string(value ? value : ""); };
  return {.host = text(PQhost(conn_)),
          .address = text(PQhostaddr(conn_)),
          .encrypted = PQsslInUse(conn_) == 1};
}

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
