#include "outboxd/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

namespace outboxd {
namespace asio = boost::asio;

namespace {

// One statement, hence one transaction: claim the oldest outbox rows nobody else holds, move them
// to outboxd.events, and create a delivery for every (event, subscribed webhook) of the event's
// realm. A row locked by another dispatcher is skipped, and it is gone from the outbox once that
// dispatcher commits, so no event is fanned out twice; the unique (event_id, webhook_id)
// constraint makes a second fan-out an error rather than a duplicate. An event that no webhook
// subscribes to is still moved, with no delivery; so is one whose webhooks were disabled (410).
constexpr std::string_view kDispatchBatch = R"sql(
WITH claimed AS (
    DELETE FROM outboxd.outbox
    WHERE id IN (SELECT id FROM outboxd.outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, realm_id, event, resource_id, data, created_at
), archived AS (
    INSERT INTO outboxd.events (id, realm_id, event, resource_id, data, created_at)
    SELECT id, realm_id, event, resource_id, data, created_at FROM claimed
    RETURNING id, realm_id, event
), fanned_out AS (
    INSERT INTO outboxd.deliveries (event_id, webhook_id)
    SELECT archived.id, subscriptions.webhook_id
    FROM archived
    JOIN outboxd.subscriptions AS subscriptions
      ON subscriptions.realm_id = archived.realm_id AND subscriptions.event = archived.event
    WHERE NOT EXISTS (SELECT 1 FROM outboxd.disabled_webhooks AS disabled
                      WHERE disabled.webhook_id = subscriptions.webhook_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM archived), (SELECT count(*) FROM fanned_out)
)sql";

}  // namespace

dispatcher::dispatcher(asio::any_io_executor executor, dispatcher_options options,
                       wake_signal& wake)
    : options_(std::move(options)),
      wake_(wake),
      connection_(executor),
      backoff_(options_.reconnect),
      retry_timer_(executor) {}

void dispatcher::stop() {
  stopping_ = true;
  retry_timer_.cancel();
  wake_.notify();
}

asio::awaitable<void> dispatcher::run() {
  // co_await results go into named locals, never straight into a condition: GCC 12 miscompiles
  // some co_await expressions inside if/while conditions.
  while (!stopping_) {
    const bool drained = co_await drain();
    if (stopping_) break;
    if (drained) {
      const bool woken = co_await wake_.wait_for(options_.poll_interval);
      if (woken) ++wakeups_by_signal_;
    } else {
      // PostgreSQL is away or the statement fails: back off instead of spinning.
      retry_timer_.expires_after(backoff_.next());
      co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  connection_.close();
}

asio::awaitable<bool> dispatcher::drain() {
  for (;;) {
    const auto batch = co_await dispatch_batch();
    if (batch.error) {
      // A connection failure is the outage log's to report (pg/outage_log.hpp); a statement
      // error is this loop's own.
      const auto level =
          pg::is_connection_error(batch.error) ? spdlog::level::debug : spdlog::level::warn;
      if (!stopping_) spdlog::log(level, "dispatcher: batch failed: {}", batch.message);
      co_return false;
    }
    backoff_.reset();
    if (batch.events < options_.batch_size || stopping_) co_return true;
  }
}

asio::awaitable<dispatch_result> dispatcher::dispatch_batch() {
  const auto ec = co_await connection_.ensure_connected(options_.database);
  if (ec) {
    co_return dispatch_result{.error = ec, .message = connection_.last_error()};
  }
  backend_pid_ = connection_.backend_pid();
  const auto limit = std::to_string(options_.batch_size);
  const auto out = co_await connection_.execute(kDispatchBatch, std::string_view(limit));
  if (!out) co_return dispatch_result{.error = out.error, .message = out.message};

  dispatch_result result;
  result.events = out.rows.int64(0, 0);
  result.deliveries = out.rows.int64(0, 1);
  events_dispatched_ += static_cast<std::uint64_t>(result.events);
  deliveries_created_ += static_cast<std::uint64_t>(result.deliveries);
  if (result.deliveries > 0 && options_.on_deliveries_created) options_.on_deliveries_created();
  if (result.events > 0) {
    spdlog::debug("dispatcher: {} events fanned out into {} deliveries", result.events,
                  result.deliveries);
  }
  co_return result;
}

}  // namespace outboxd
