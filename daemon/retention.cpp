#include "outboxd/retention.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "outboxd/log.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("retention");
  return *component;
}

// One batch, step 1: finished deliveries (and their attempts) of the next events in dispatch
// order, older than the retention. Events are walked with a keyset cursor, (dispatched_at, id)
// past the last one looked at, so events that must stay (a delivery still pending, or finished
// too recently) are passed over instead of being read again by every batch. Only deliveries of
// old events can be old themselves: a delivery is created when its event is dispatched, and
// updated_at only moves forward. The deliveries are locked SKIP LOCKED: one that a daemon is
// writing right now is left for a later round, and the lock re-checks status and updated_at on
// the row's latest version, so a delivery made pending again meanwhile stays.
// $1 retention, $2 batch rows, $3/$4 the cursor.
constexpr std::string_view kPurgeDeliveries = R"sql(
WITH candidates AS (
    SELECT id, dispatched_at FROM outboxd.events
    WHERE dispatched_at < now() - $1::interval
      AND dispatched_at >= $3::timestamptz
      AND (dispatched_at, id) > ($3::timestamptz, $4::bigint)
    ORDER BY dispatched_at, id
    LIMIT $2
), doomed AS (
    SELECT d.id FROM outboxd.deliveries AS d
    WHERE d.event_id IN (SELECT id FROM candidates)
      AND d.status IN ('succeeded', 'dead', 'cancelled')
      AND d.updated_at < now() - $1::interval
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), attempts_gone AS (
    DELETE FROM outboxd.attempts AS a USING doomed WHERE a.delivery_id = doomed.id RETURNING 1
), deliveries_gone AS (
    DELETE FROM outboxd.deliveries AS d USING doomed WHERE d.id = doomed.id RETURNING 1
), last_candidate AS (
    SELECT dispatched_at, id FROM candidates ORDER BY dispatched_at DESC, id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM deliveries_gone), (SELECT count(*) FROM attempts_gone),
       (SELECT count(*) FROM candidates),
       (SELECT dispatched_at::text FROM last_candidate), (SELECT id FROM last_candidate),
       (SELECT coalesce(array_agg(id), '{}')::text FROM candidates)
)sql";

// Step 2: of those events, lock the ones with no delivery left (this statement sees step 1's
// deletes). Whoever inserts a delivery for an event holds a key-share lock on the event until it
// commits; this lock conflicts with it, and SKIP LOCKED passes such an event over.
constexpr std::string_view kLockEvents = R"sql(
SELECT coalesce(array_agg(e.id), '{}')::text FROM (
    SELECT e.id FROM outboxd.events AS e
    WHERE e.id = ANY($1::bigint[])
      AND NOT EXISTS (SELECT 1 FROM outboxd.deliveries AS d WHERE d.event_id = e.id)
    FOR UPDATE OF e SKIP LOCKED
) AS e
)sql";

// Step 3: delete them, checking again with a snapshot taken after the lock: a delivery committed
// between step 2's snapshot and its lock is seen here, and none can be added while the lock is
// held. So the cascade from events to deliveries never takes anything.
constexpr std::string_view kDeleteEvents = R"sql(
DELETE FROM outboxd.events AS e
WHERE e.id = ANY($1::bigint[])
  AND NOT EXISTS (SELECT 1 FROM outboxd.deliveries AS d WHERE d.event_id = e.id)
)sql";

// Previous secrets whose grace is over are forgotten: nothing signs with them any more.
constexpr std::string_view kExpirePreviousSecrets = R"sql(
UPDATE outboxd.webhook_secrets
SET previous_secret = NULL, previous_until = NULL
WHERE previous_until <= now()
)sql";

// So are the secrets of webhooks the IAM no longer has (or that subscribe to nothing).
constexpr std::string_view kForgetOrphanedSecrets = R"sql(
DELETE FROM outboxd.webhook_secrets AS k
WHERE NOT EXISTS (SELECT 1 FROM outboxd.subscriptions() AS s WHERE s.webhook_id = k.webhook_id)
)sql";

constexpr std::string_view kCursorStart = "-infinity";

}  // namespace

retention::retention(asio::any_io_executor executor, retention_options options)
    : options_(std::move(options)),
      retention_interval_(fmt::format("{} milliseconds", options_.retention.count())),
      batch_rows_(std::to_string(std::max(options_.batch_rows, 1))),
      connection_(executor),
      timer_(executor),
      backoff_(options_.reconnect) {}

void retention::stop() {
  stopping_ = true;
  timer_.cancel();
}

asio::awaitable<void> retention::run() {
  while (!stopping_) {
    const auto round = co_await purge_round();
    if (stopping_) break;
    auto wait = options_.interval;
    if (round.error) {
      ++rounds_failed_;
      // The outage log reports a lost PostgreSQL; a statement error is this loop's own, once
      // per distinct message.
      if (!pg::is_connection_error(round.error) && round.message != last_error_) {
        log().warn("retention: round failed: {}; retrying", round.message);
      }
      last_error_ = round.message;
      wait = std::min(wait, backoff_.next());
    } else {
      backoff_.reset();
      last_error_.clear();
      if (round.bounded) wait = options_.pause;  // more to purge: go on, gently
    }
    timer_.expires_after(wait);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  connection_.close();
}

asio::awaitable<void> retention::roll_back() {
  if (connection_.is_open()) co_await connection_.execute_script("ROLLBACK");
}

asio::awaitable<retention_round> retention::purge_round() {
  retention_round round;
  const auto ec = co_await connection_.ensure_connected(options_.database);
  if (ec) {
    round.error = ec;
    round.message = connection_.last_error();
    co_return round;
  }
  if (options_.retention.count() > 0) {
    cursor position{std::string(kCursorStart), "0"};
    for (int batch = 0; !stopping_; ++batch) {
      if (batch == options_.max_batches_per_round) {
        round.bounded = true;
        break;
      }
      bool more = false;
      const auto out = co_await purge_batch(position, round, more);
      if (!out) {
        round.error = out.error;
        round.message = out.message;
        co_return round;
      }
      if (!more) break;
      timer_.expires_after(options_.pause);
      co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  for (const auto statement : {kExpirePreviousSecrets, kForgetOrphanedSecrets}) {
    const auto out = co_await connection_.execute(statement);
    if (!out) {
      round.error = out.error;
      round.message = out.message;
      co_return round;
    }
    const auto forgotten = static_cast<std::uint64_t>(out.rows.affected_rows());
    round.previous_secrets += forgotten;
    previous_secrets_purged_ += forgotten;
  }
  ++rounds_;
  if (round.deliveries + round.events > 0) {
    log().info("retention: purged {} deliveries, {} attempts and {} events{}", round.deliveries,
               round.attempts, round.events, round.bounded ? "; more to purge, continuing" : "");
  }
  co_return round;
}

asio::awaitable<pg::outcome> retention::purge_batch(cursor& position, retention_round& round,
                                                    bool& more) {
  // One short transaction per batch: the rows it deletes are locked only until its commit.
  auto out = co_await connection_.execute_script("BEGIN");
  if (!out) co_return out;
  const pg::param interval(retention_interval_), rows(batch_rows_),
      after_time(position.dispatched_at), after_id(position.id);
  out = co_await connection_.execute(kPurgeDeliveries, interval, rows, after_time, after_id);
  if (!out) {
    co_await roll_back();
    co_return out;
  }
  const auto deliveries = out.rows.int64(0, 0);
  const auto attempts = out.rows.int64(0, 1);
  const auto candidates = out.rows.int64(0, 2);
  const auto last_time = std::string(out.rows.text(0, 3));
  const auto last_id = std::string(out.rows.text(0, 4));
  const auto candidate_ids = std::string(out.rows.text(0, 5));

  std::int64_t events = 0;
  if (candidates > 0) {
    const pg::param ids(candidate_ids);
    out = co_await connection_.execute(kLockEvents, ids);
    if (!out) {
      co_await roll_back();
      co_return out;
    }
    const auto locked = std::string(out.rows.text(0, 0));
    if (locked != "{}") {
      const pg::param locked_ids(locked);
      out = co_await connection_.execute(kDeleteEvents, locked_ids);
      if (!out) {
        co_await roll_back();
        co_return out;
      }
      events = out.rows.affected_rows();
    }
  }
  out = co_await connection_.execute_script("COMMIT");
  if (!out) {
    co_await roll_back();
    co_return out;
  }

  round.deliveries += static_cast<std::uint64_t>(deliveries);
  round.attempts += static_cast<std::uint64_t>(attempts);
  round.events += static_cast<std::uint64_t>(events);
  deliveries_purged_ += static_cast<std::uint64_t>(deliveries);
  attempts_purged_ += static_cast<std::uint64_t>(attempts);
  events_purged_ += static_cast<std::uint64_t>(events);

  const auto limit = std::max(options_.batch_rows, 1);
  if (deliveries >= limit) {
    // The deliveries of these events did not fit in one batch: the same events again, whose
    // purged deliveries are gone now.
    more = true;
  } else {
    more = candidates >= limit;
    if (candidates > 0) position = {last_time, last_id};
  }
  co_return out;
}

}  // namespace outboxd
