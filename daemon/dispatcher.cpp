#include "outboxd/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>

#include "outboxd/log.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("dispatcher");
  return *component;
}

// One statement, hence one transaction: claim the oldest outbox rows nobody else holds, move them
// to outboxd.events, and create a delivery for every (event, subscribed webhook) of the event's
// realm and name. A row locked by another dispatcher is skipped, and it is gone from the outbox
// once that dispatcher commits, so no event is fanned out twice; the unique (event_id,
// webhook_id) constraint makes a second fan-out an error rather than a duplicate. DISTINCT keeps
// an adapter that returns a subscription twice from being that error. An event that no webhook
// subscribes to is still moved, with no delivery; so is one whose webhooks were disabled (410).
// $2, when set, is the one row to take (already locked by this transaction).
constexpr std::string_view kDispatchBatch = R"sql(
WITH claimed AS (
    DELETE FROM outboxd.outbox
    WHERE id IN (SELECT id FROM outboxd.outbox
                 WHERE $2::bigint IS NULL OR id = $2::bigint
                 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
    RETURNING id, realm_id, event, resource_id, data, created_at
), archived AS (
    INSERT INTO outboxd.events (id, realm_id, event, resource_id, data, created_at)
    SELECT id, realm_id, event, resource_id, data, created_at FROM claimed
    RETURNING id, realm_id, event
), fanned_out AS (
    INSERT INTO outboxd.deliveries (event_id, webhook_id)
    SELECT DISTINCT archived.id, subscriptions.webhook_id
    FROM archived
    JOIN outboxd.subscriptions() AS subscriptions
      ON subscriptions.realm_id = archived.realm_id AND subscriptions.event = archived.event
    WHERE NOT EXISTS (SELECT 1 FROM outboxd.disabled_webhooks AS disabled
                      WHERE disabled.webhook_id = subscriptions.webhook_id)
    RETURNING 1
)
SELECT (SELECT count(*) FROM archived), (SELECT count(*) FROM fanned_out)
)sql";

constexpr std::string_view kPickOldest =
    "SELECT id FROM outboxd.outbox ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";

// The row that failed alone, moved out of the way in one statement, with the server's primary
// message (never DETAIL, which may quote the data).
constexpr std::string_view kSetAside = R"sql(
WITH poisoned AS (
    DELETE FROM outboxd.outbox WHERE id = $1::bigint
    RETURNING id, realm_id, event, resource_id, data, created_at
)
INSERT INTO outboxd.poison_events
    (id, realm_id, event, resource_id, data, created_at, sqlstate, error_message)
SELECT id, realm_id, event, resource_id, data, created_at, $2, $3 FROM poisoned
)sql";

dispatch_result failure(const pg::outcome& out) {
  return {.error = out.error, .message = out.primary.empty() ? out.message : out.primary};
}

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

std::string dispatcher::last_error() const {
  const std::lock_guard lock(last_error_mutex_);
  return last_error_;
}

asio::awaitable<void> dispatcher::run() {
  // co_await results go into named locals, never straight into a condition: GCC 12 miscompiles
  // some co_await expressions inside if/while conditions.
  while (!stopping_) {
    const bool drained = co_await drain();
    if (stopping_) break;
    if (drained) {
      const bool woken = co_await wake_.wait_for(options_.poll_interval);
      if (woken) {
        ++wakeups_by_signal_;
      } else {
        ++wakeups_by_poll_;
      }
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
      if (!stopping_) note_failure(batch);
      co_return false;
    }
    note_success();
    backoff_.reset();
    if (batch.events + batch.set_aside < options_.batch_size || stopping_) co_return true;
  }
}

// One line when dispatch pauses and one when the reason changes, not one per retry: a dropped
// IAM table may stay dropped for minutes.
void dispatcher::note_failure(const dispatch_result& batch) {
  ++batch_failures_;
  // A lost or refused connection is the outage log's to report (pg/outage_log.hpp), once for
  // every component; a statement error is this loop's own.
  if (pg::is_connection_error(batch.error)) {
    log().debug("dispatcher: batch failed: {}", batch.message);
    return;
  }
  const std::lock_guard lock(last_error_mutex_);
  if (batch.message == last_error_) return;
  last_error_ = batch.message;
  log().error(
      "dispatcher: paused, cannot fan out: {}; events wait in outboxd.outbox and dispatch resumes "
      "by itself once this works (retrying with backoff)",
      batch.message);
}

void dispatcher::note_success() {
  const std::lock_guard lock(last_error_mutex_);
  if (last_error_.empty()) return;
  log().info("dispatcher: resumed after {} failed attempts", batch_failures_.load());
  last_error_.clear();
}

void dispatcher::count(const dispatch_result& result) {
  events_dispatched_ += static_cast<std::uint64_t>(result.events);
  deliveries_created_ += static_cast<std::uint64_t>(result.deliveries);
  events_set_aside_ += static_cast<std::uint64_t>(result.set_aside);
  if (result.deliveries > 0 && options_.on_deliveries_created) options_.on_deliveries_created();
  if (result.events > 0) {
    log().debug("dispatcher: {} events fanned out into {} deliveries", result.events,
                result.deliveries);
  }
}

asio::awaitable<pg::outcome> dispatcher::fan_out(int limit, std::optional<std::int64_t> only_id) {
  const auto limit_text = std::to_string(limit);
  const auto id_text = only_id ? std::to_string(*only_id) : std::string{};
  const pg::param id = only_id ? pg::param(id_text) : std::nullopt;
  const pg::param count_param(limit_text);
  co_return co_await connection_.execute(kDispatchBatch, count_param, id);
}

asio::awaitable<void> dispatcher::roll_back() {
  if (connection_.is_open()) co_await connection_.execute_script("ROLLBACK");
}

asio::awaitable<dispatch_result> dispatcher::dispatch_one() {
  const auto begun = co_await connection_.execute_script("BEGIN");
  if (!begun) co_return failure(begun);
  const auto picked = co_await connection_.execute(kPickOldest);
  if (!picked) {
    co_await roll_back();
    co_return failure(picked);
  }
  dispatch_result result;
  if (picked.rows.rows() == 1) {
    const auto id = picked.rows.int64(0, 0);
    const auto savepoint = co_await connection_.execute_script("SAVEPOINT fan_out");
    if (!savepoint) {
      co_await roll_back();
      co_return failure(savepoint);
    }
    const auto out = co_await fan_out(1, id);
    if (out) {
      result.events = out.rows.int64(0, 0);
      result.deliveries = out.rows.int64(0, 1);
    } else if (pg::is_row_error(out.sqlstate)) {
      const auto undone = co_await connection_.execute_script("ROLLBACK TO SAVEPOINT fan_out");
      if (!undone) {
        co_await roll_back();
        co_return failure(undone);
      }
      const auto id_text = std::to_string(id);
      const pg::param id_param(id_text), sqlstate_param(out.sqlstate), message_param(out.primary);
      const auto moved =
          co_await connection_.execute(kSetAside, id_param, sqlstate_param, message_param);
      if (!moved) {
        co_await roll_back();
        co_return failure(moved);
      }
      result.set_aside = moved.rows.affected_rows();
    } else {
      co_await roll_back();
      co_return failure(out);
    }
    if (result.set_aside > 0) {
      // The id and SQLSTATE only: the message may quote the event's data.
      const log_ids ids{.event_id = id};
      log_with(log(), ids, spdlog::level::warn,
               "dispatcher: outbox event {} cannot be fanned out (SQLSTATE {}) and was moved to "
               "outboxd.poison_events; the events after it go on. Once the cause is fixed: SELECT "
               "outboxd.replay_poison_event({})",
               id, out.sqlstate, id);
    }
  }
  const auto committed = co_await connection_.execute_script("COMMIT");
  if (!committed) {
    co_await roll_back();
    co_return failure(committed);
  }
  co_return result;
}

asio::awaitable<dispatch_result> dispatcher::dispatch_batch() {
  const auto ec = co_await connection_.ensure_connected(options_.database);
  if (ec) {
    co_return dispatch_result{.error = ec, .message = connection_.last_error()};
  }
  backend_pid_ = connection_.backend_pid();

  // The batch's rows are taken oldest first. A failure one row can cause splits the rest of the
  // batch in halves until the statement succeeds; at one row, that row is set aside.
  dispatch_result total;
  int budget = options_.batch_size;
  int limit = budget;
  while (budget > 0 && !total.error) {
    limit = std::min(limit, budget);
    const auto out = co_await fan_out(limit, std::nullopt);
    if (out) {
      const auto events = out.rows.int64(0, 0);
      total.events += events;
      total.deliveries += out.rows.int64(0, 1);
      budget -= limit;
      if (events < limit) break;  // the outbox (or its unlocked part) is empty
      continue;
    }
    if (!pg::is_row_error(out.sqlstate)) {
      const auto failed = failure(out);
      total.error = failed.error;
      total.message = failed.message;
      break;
    }
    if (limit > 1) {
      limit /= 2;
      continue;
    }
    const auto one = co_await dispatch_one();
    total.events += one.events;
    total.deliveries += one.deliveries;
    total.set_aside += one.set_aside;
    if (one.error) {
      total.error = one.error;
      total.message = one.message;
      break;
    }
    if (one.events + one.set_aside == 0) break;
    budget -= 1;
    limit = budget;  // past the bad row, the rest of the batch at full size again
  }
  count(total);
  co_return total;
}

}  // namespace outboxd
