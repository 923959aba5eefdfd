#include "outboxd/backlog_sampler.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

#include "outboxd/log.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("backlog_sampler");
  return *component;
}

// Plain reads: they take no row lock, so they never wait for the dispatcher's or a claim's.
constexpr std::string_view kSample = R"sql(
SELECT (SELECT count(*) FROM (SELECT 1 FROM outboxd.outbox LIMIT $1) AS o),
       (SELECT count(*) FROM (SELECT 1 FROM outboxd.deliveries
                              WHERE status IN ('pending', 'delivering') AND next_attempt_at <= now()
                              LIMIT $1) AS d),
       coalesce((extract(epoch FROM clock_timestamp() -
                        (SELECT created_at FROM outboxd.outbox ORDER BY id LIMIT 1))
                 * 1000000)::bigint, 0)
)sql";

}  // namespace

backlog_sampler::backlog_sampler(asio::any_io_executor executor, backlog_sampler_options options)
    : options_(std::move(options)), connection_(executor), timer_(executor) {}

void backlog_sampler::stop() {
  stopping_ = true;
  timer_.cancel();
  connection_.close();
}

asio::awaitable<void> backlog_sampler::run() {
  while (!stopping_) {
    co_await sample();
    if (stopping_) break;
    timer_.expires_after(options_.interval);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  connection_.close();
}

asio::awaitable<void> backlog_sampler::sample() {
  // A connect failure is the outage log's to report (pg/outage_log.hpp).
  const auto ec = co_await connection_.ensure_connected(options_.database);
  if (ec) co_return;
  const auto cap = std::to_string(options_.cap);
  const auto out = co_await connection_.execute(kSample, std::string_view(cap));
  if (!out || out.rows.rows() != 1) {
    if (!stopping_) log().debug("backlog sampler: {}", out.message);
    if (pg::is_connection_error(out.error)) connection_.close();
    co_return;
  }
  last_ = backlog_sample{.outbox_rows = static_cast<std::uint64_t>(out.rows.int64(0, 0)),
                         .due_deliveries = static_cast<std::uint64_t>(out.rows.int64(0, 1)),
                         .oldest_event_age = std::chrono::microseconds(
                             std::max<std::int64_t>(out.rows.int64(0, 2), 0)),
                         .taken = std::chrono::steady_clock::now()};
}

}  // namespace outboxd
