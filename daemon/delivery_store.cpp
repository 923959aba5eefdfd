#include "outboxd/delivery_store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sstream>
#include <unordered_set>

#include "outboxd/json_text.hpp"
#include "outboxd/log.hpp"
#include "outboxd/metrics.hpp"
#include "outboxd/schedule_column.hpp"

namespace outboxd {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("delivery_store");
  return *component;
}

// Claim: take the due deliveries nobody holds and give each a new claim token and a lease. While
// 'delivering', next_attempt_at is the lease's end, so one index finds both due retries and
// deliveries whose holder died. For those, the attempt that never reported is recorded now as
// 'lease_expired' under the next attempt number: it may or may not have been sent. It counts in
// expired_attempts, not in the retry schedule; past $4 of them the delivery is dead
// ('crash_loop'). The subscription is resolved again for the event's own realm and event name,
// so a webhook that was deleted or unsubscribed since the fan-out gets nothing. The retry
// schedule counts neither expired leases nor the attempts before a replay (replayed_attempts);
// the webhook's own policy (outboxd.webhook_policies, by primary key) comes along.
constexpr std::string_view kClaim = R"sql(
WITH due AS (
    SELECT id, status, updated_at FROM outboxd.deliveries
    WHERE status IN ('pending', 'delivering') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outboxd.deliveries AS d
    SET claim_token = d.claim_token + 1,
        attempt_count = d.attempt_count + (due.status = 'delivering')::int,
        expired_attempts = d.expired_attempts + (due.status = 'delivering')::int,
        status = CASE WHEN due.status = 'delivering' AND d.expired_attempts + 1 >= $4
                      THEN 'dead' ELSE 'delivering' END,
        next_attempt_at = now() + $2::interval,
        leased_until = now() + $2::interval,
        leased_by = $3, updated_at = now()
    FROM due
    WHERE d.id = due.id
    RETURNING d.id, d.event_id, d.webhook_id, d.message_id, d.claim_token, d.attempt_count,
              d.expired_attempts, d.replayed_attempts, d.status, due.status AS previous_status,
              due.updated_at AS previous_claim
), expired AS (
    INSERT INTO outboxd.attempts
        (delivery_id, attempt_number, started_at, duration_ms, error_code, error_detail, succeeded)
    SELECT id, attempt_count, previous_claim, 0,
           CASE WHEN status = 'dead' THEN 'crash_loop' ELSE 'lease_expired' END,
           CASE WHEN status = 'dead'
                THEN format('the lease expired %s times without an outcome (did the daemon '
                            'crash?); given up so that it cannot loop forever', expired_attempts)
                ELSE 'the daemon holding this attempt stopped before recording its outcome; '
                     'the request may or may not have been sent' END,
           false
    FROM claimed WHERE previous_status = 'delivering'
    ON CONFLICT DO NOTHING
), hooks AS (
    SELECT DISTINCT ON (s.webhook_id, s.realm_id, s.event)
           s.webhook_id, s.realm_id, s.event, s.url, s.headers::text AS headers, s.secret
    FROM outboxd.subscriptions() AS s
    WHERE s.webhook_id IN (SELECT webhook_id FROM claimed)
    ORDER BY s.webhook_id, s.realm_id, s.event
), rotated AS (
    -- Secret rotation (sql/migrations/0007_webhook_secrets.sql): a secret other than the one last
    -- seen is new; the one it replaces signs beside it for $5. Only new secrets are written, and
    -- the upsert works on the row's latest version, so daemons noticing one change together
    -- record it once and all get the previous secret back.
    INSERT INTO outboxd.webhook_secrets AS k (webhook_id, secret)
    SELECT DISTINCT ON (h.webhook_id) h.webhook_id, h.secret FROM hooks AS h
    WHERE NOT EXISTS (SELECT 1 FROM outboxd.webhook_secrets AS seen
                      WHERE seen.webhook_id = h.webhook_id AND seen.secret = h.secret)
    ON CONFLICT (webhook_id) DO UPDATE
    SET secret = EXCLUDED.secret,
        previous_secret = CASE WHEN k.secret = EXCLUDED.secret THEN k.previous_secret
                               ELSE k.secret END,
        previous_until = CASE WHEN k.secret = EXCLUDED.secret THEN k.previous_until
                              ELSE now() + $5::interval END,
        changed_at = CASE WHEN k.secret = EXCLUDED.secret THEN k.changed_at ELSE now() END
    RETURNING k.webhook_id, k.previous_secret, k.previous_until
), previous AS (
    SELECT webhook_id, previous_secret, previous_until FROM rotated
    UNION ALL
    SELECT k.webhook_id, k.previous_secret, k.previous_until FROM outboxd.webhook_secrets AS k
    WHERE k.webhook_id IN (SELECT webhook_id FROM hooks)
      AND k.webhook_id NOT IN (SELECT webhook_id FROM rotated)
)
SELECT c.id, c.claim_token, c.attempt_count + 1,
       c.attempt_count - c.expired_attempts - c.replayed_attempts + 1,
       c.status = 'dead', c.message_id::text, c.webhook_id::text,
       EXISTS (SELECT 1 FROM hooks AS any_hook WHERE any_hook.webhook_id = c.webhook_id),
       h.webhook_id IS NOT NULL,
       EXISTS (SELECT 1 FROM outboxd.disabled_webhooks AS x WHERE x.webhook_id = c.webhook_id),
       coalesce(h.url, ''), coalesce(h.headers, '{}'), coalesce(h.secret, ''),
       e.id, e.event, to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.resource_id::text, coalesce(e.data::text, 'null'),
       (extract(epoch FROM e.created_at) * 1000000)::bigint, c.previous_status = 'delivering',
       coalesce((SELECT prev.previous_secret FROM previous AS prev
                 WHERE prev.webhook_id = c.webhook_id AND prev.previous_until > now()), ''),
       array_to_string(p.retry_schedule_ms, ','), p.max_attempts, p.max_in_flight
FROM claimed AS c
JOIN outboxd.events AS e ON e.id = c.event_id
LEFT JOIN hooks AS h
  ON h.webhook_id = c.webhook_id AND h.realm_id = e.realm_id AND h.event = e.event
LEFT JOIN outboxd.webhook_policies AS p ON p.webhook_id = c.webhook_id
)sql";

// Outcomes, many per statement. The deliveries are locked first, in id order: a claim meeting one
// skips it (SKIP LOCKED) instead of deadlocking with this statement, and replicas writing at once
// lock in one order; a delivery deleted meanwhile (retention) takes its outcome with it. An
// outcome counts only while its claim still holds the delivery: same token, still 'delivering',
// and the lease not over by the database's clock at the moment the row is read. Anything else is
// a stale or replayed write and changes nothing, neither the delivery nor the attempts.
constexpr std::string_view kRecord = R"sql(
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
        delivery_id bigint, claim_token bigint, attempt_number int, age_us bigint,
        duration_ms int, status_code int, error_code text, error_detail text,
        response_body text, succeeded boolean, next_status text, next_delay_ms bigint)
), locked AS (
    SELECT d.id, d.status, d.claim_token, d.leased_until FROM outboxd.deliveries AS d
    WHERE d.id IN (SELECT delivery_id FROM input)
    ORDER BY d.id
    FOR UPDATE
), held AS (
    SELECT i.* FROM input AS i JOIN locked AS l ON l.id = i.delivery_id
    WHERE l.status = 'delivering' AND l.claim_token = i.claim_token
      AND l.leased_until > clock_timestamp()
), recorded AS (
    INSERT INTO outboxd.attempts
        (delivery_id, attempt_number, started_at, duration_ms, status_code, error_code,
         error_detail, response_body, succeeded)
    SELECT delivery_id, attempt_number, now() - age_us * interval '1 microsecond', duration_ms,
           status_code, error_code, error_detail, response_body, succeeded
    FROM held
    ON CONFLICT (delivery_id, attempt_number) DO NOTHING
    RETURNING 1
), advanced AS (
    UPDATE outboxd.deliveries AS d
    SET status = h.next_status, attempt_count = h.attempt_number,
        next_attempt_at = now() + coalesce(h.next_delay_ms, 0) * interval '1 millisecond',
        leased_until = NULL, leased_by = NULL, updated_at = now()
    FROM held AS h
    WHERE d.id = h.delivery_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM advanced),
       (SELECT coalesce(string_agg(i.delivery_id || ':' || i.claim_token, ','), '')
        FROM input AS i
        WHERE NOT EXISTS (SELECT 1 FROM held AS h
                          WHERE h.delivery_id = i.delivery_id AND h.claim_token = i.claim_token))
)sql";

// Unsent deliveries go back as they were, fenced like outcomes: no attempt is counted or recorded.
constexpr std::string_view kRelease = R"sql(
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS t(delivery_id bigint, claim_token bigint, delay_ms bigint)
), locked AS (
    SELECT d.id FROM outboxd.deliveries AS d
    WHERE d.id IN (SELECT delivery_id FROM input)
    ORDER BY d.id
    FOR UPDATE
)
UPDATE outboxd.deliveries AS d
SET status = 'pending', next_attempt_at = now() + i.delay_ms * interval '1 millisecond',
    leased_until = NULL, leased_by = NULL, updated_at = now()
FROM input AS i JOIN locked AS l ON l.id = i.delivery_id
WHERE d.id = i.delivery_id AND d.status = 'delivering' AND d.claim_token = i.claim_token
)sql";

constexpr std::string_view kDisable = R"sql(
WITH disabled AS (
    INSERT INTO outboxd.disabled_webhooks (webhook_id, reason) VALUES ($1::uuid, $2)
    ON CONFLICT (webhook_id) DO NOTHING
)
UPDATE outboxd.deliveries SET status = 'cancelled', updated_at = now()
WHERE webhook_id = $1::uuid AND status = 'pending'
)sql";

constexpr std::string_view kDeferWebhook = R"sql(
UPDATE outboxd.deliveries
SET next_attempt_at = now() + $2::bigint * interval '1 millisecond', updated_at = now()
WHERE webhook_id = $1::uuid AND status = 'pending'
  AND next_attempt_at < now() + $2::bigint * interval '1 millisecond'
)sql";

// One daemon's view of an endpoint's circuit; replicas each have their own breaker, so a
// closing removes only the row this daemon wrote.
constexpr std::string_view kOpenCircuit = R"sql(
INSERT INTO outboxd.open_circuits AS o (endpoint, opened_at, open_until, opened_by)
VALUES ($1, now(), now() + $2::bigint * interval '1 millisecond', $3)
ON CONFLICT (endpoint) DO UPDATE
SET opened_at = EXCLUDED.opened_at, open_until = EXCLUDED.open_until, opened_by = EXCLUDED.opened_by
)sql";

constexpr std::string_view kCloseCircuit = R"sql(
DELETE FROM outboxd.open_circuits WHERE endpoint = $1 AND opened_by = $2
)sql";

constexpr std::string_view kDatabaseTime =
    "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

std::string_view status_name(attempt_record::next_status status) {
  switch (status) {
    case attempt_record::next_status::pending:
      return "pending";
    case attempt_record::next_status::succeeded:
      return "succeeded";
    case attempt_record::next_status::dead:
      return "dead";
    case attempt_record::next_status::cancelled:
      return "cancelled";
  }
  return "pending";
}

void append_nullable_string(std::string& json, std::string_view text) {
  if (text.empty()) {
    json.append("null");
  } else {
    append_json_string(json, text);
  }
}

void append_record_json(std::string& json, const attempt_record& r, steady_clock::time_point now) {
  const auto age = std::chrono::duration_cast<std::chrono::microseconds>(now - r.started);
  json.append(fmt::format(R"({{"delivery_id":{},"claim_token":{},"attempt_number":{},"age_us":{},)"
                          R"("duration_ms":{},"status_code":{},"succeeded":{},"next_status":"{}",)"
                          R"("next_delay_ms":{},"error_code":)",
                          r.delivery_id, r.claim_token, r.attempt,
                          std::max<std::int64_t>(age.count(), 0), r.duration.count(),
                          r.status_code > 0 ? std::to_string(r.status_code) : "null", r.succeeded,
                          status_name(r.next), std::max<std::int64_t>(r.next_delay.count(), 0)));
  append_nullable_string(json, r.error_code);
  json.append(R"(,"error_detail":)");
  append_nullable_string(json, r.error_detail);
  json.append(R"(,"response_body":)");
  append_nullable_string(json, r.response_body);
  json.push_back('}');
}

template <typename Entry>
void pop_front(std::deque<Entry>& queue, std::size_t count) {
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(count));
}

// The front of a queue as one JSON array: at most `limit` entries and, past the first, at most
// `max_bytes`. Returns how many entries it holds.
template <typename Entry, typename AppendOne>
std::size_t json_batch(const std::deque<Entry>& queue, std::size_t limit, std::size_t max_bytes,
                       std::string& json, AppendOne append_one) {
  json = "[";
  std::size_t count = 0;
  std::string entry;
  for (; count < std::min(limit, queue.size()); ++count) {
    entry.clear();
    append_one(entry, queue[count]);
    if (count > 0 && json.size() + entry.size() + 2 > max_bytes) break;
    if (count > 0) json.push_back(',');
    json.append(entry);
  }
  json.push_back(']');
  return count;
}

}  // namespace

std::string lease_terms::problem() const {
  if (duration >= minimum()) return {};
  return fmt::format(
      "--lease ({} ms) must be at least --http-request-timeout ({} ms) + the outcome write's "
      "bound ({} ms: --statement-timeout and the client's slack) + {} ms, so that an outcome is "
      "written before its lease runs out and another daemon may send it again",
      duration.count(), request_timeout.count(), write_bound().count(), kMargin.count());
}

attempt_record attempt_record::of(const claimed_delivery& delivery) {
  return {.delivery_id = delivery.id,
          .claim_token = delivery.claim_token,
          .attempt = delivery.attempt,
          .webhook_id = delivery.webhook_id,
          .started = steady_clock::now(),
          .lease_deadline = delivery.lease_deadline,
          .event_created = delivery.event_created};
}

delivery_store::delivery_store(asio::any_io_executor executor, delivery_store_options options)
    : options_(std::move(options)),
      lease_interval_(fmt::format("{} milliseconds", options_.lease.duration.count())),
      max_expired_attempts_(std::to_string(std::max(options_.max_expired_attempts, 1))),
      secret_grace_(fmt::format("{} milliseconds", options_.secret_grace.count())),
      claim_connection_(executor),
      write_connection_(executor),
      writer_wake_(executor),
      backoff_(options_.reconnect),
      retry_timer_(executor) {}

bool delivery_store::may_send(const claimed_delivery& delivery,
                              steady_clock::time_point now) const {
  return delivery.lease_deadline - now >=
         options_.lease.request_timeout + options_.lease.write_bound();
}

asio::awaitable<void> delivery_store::measure_clock() {
  const auto sent = system_clock::now();
  const auto out = co_await claim_connection_.execute(kDatabaseTime);
  const auto received = system_clock::now();
  if (!out || out.rows.rows() != 1) co_return;  // the claim that follows reports the failure
  const auto database_time =
      system_clock::time_point(std::chrono::microseconds(out.rows.int64(0, 0)));
  clock_.observe(sent, database_time, received);
  next_clock_check_ = steady_clock::now() + options_.clock_check_interval;
}

asio::awaitable<claim_result> delivery_store::claim(std::size_t limit) {
  const auto ec = co_await claim_connection_.ensure_connected(options_.database);
  if (ec) co_return claim_result{.error = ec, .message = claim_connection_.last_error()};
  if (!next_clock_check_ || steady_clock::now() >= *next_clock_check_) co_await measure_clock();

  // The lease is counted from before the statement is sent: the database's starts later, so this
  // daemon always gives up on a claim before the database would let another daemon take it.
  const auto lease_deadline = steady_clock::now() + options_.lease.duration;
  const auto count = std::to_string(limit);
  const auto out = co_await claim_connection_.execute(
      kClaim, std::string_view(count), std::string_view(lease_interval_),
      std::string_view(options_.instance_id), std::string_view(max_expired_attempts_),
      std::string_view(secret_grace_));
  if (!out) co_return claim_result{.error = out.error, .message = out.message};

  claim_result result;
  const auto& rows = out.rows;
  result.deliveries.reserve(static_cast<std::size_t>(rows.rows()));
  for (int r = 0; r < rows.rows(); ++r) {
    result.deliveries.push_back(claimed_delivery{
        .id = rows.int64(r, 0),
        .claim_token = rows.int64(r, 1),
        .attempt = static_cast<int>(rows.int64(r, 2)),
        .try_number = static_cast<int>(rows.int64(r, 3)),
        .lease_deadline = lease_deadline,
        .crash_looped = rows.boolean(r, 4),
        .message_id = std::string(rows.text(r, 5)),
        .webhook_id = std::string(rows.text(r, 6)),
        .webhook_found = rows.boolean(r, 7),
        .webhook_subscribed = rows.boolean(r, 8),
        .webhook_disabled = rows.boolean(r, 9),
        .url = std::string(rows.text(r, 10)),
        .headers_json = std::string(rows.text(r, 11)),
        .secret = std::string(rows.text(r, 12)),
        .previous_secret = std::string(rows.text(r, 20)),
        .event_id = rows.int64(r, 13),
        .event = std::string(rows.text(r, 14)),
        .timestamp = std::string(rows.text(r, 15)),
        .resource_id = std::string(rows.text(r, 16)),
        .data = std::string(rows.text(r, 17)),
        .event_created = system_clock::time_point(std::chrono::microseconds(rows.int64(r, 18))),
        .lease_expired = rows.boolean(r, 19),
    });
    if (options_.observer && result.deliveries.back().lease_expired) {
      options_.observer->lease_expiry_recorded(result.deliveries.back().crash_looped);
    }
    auto& claimed = result.deliveries.back();
    claimed.retry.delays = parse_schedule_column(rows.text(r, 21));
    if (!rows.is_null(r, 22)) claimed.retry.max_attempts = static_cast<int>(rows.int64(r, 22));
    if (!rows.is_null(r, 23)) claimed.max_in_flight = static_cast<std::size_t>(rows.int64(r, 23));
  }
  co_return result;
}

void delivery_store::record(attempt_record record) {
  if (options_.on_recorded) options_.on_recorded(record);
  records_.push_back(std::move(record));
  writer_wake_.notify();
}

void delivery_store::release(const claimed_delivery& delivery, milliseconds delay) {
  releases_.push_back({delivery.id, delivery.claim_token, delay});
  writer_wake_.notify();
}

void delivery_store::disable_webhook(const std::string& webhook_id, const std::string& reason) {
  disables_.push_back({webhook_id, reason});
  writer_wake_.notify();
}

void delivery_store::defer_webhook(const std::string& webhook_id, milliseconds delay) {
  webhook_deferrals_.push_back({webhook_id, delay});
  writer_wake_.notify();
}

void delivery_store::record_circuit(const std::string& endpoint,
                                    std::optional<milliseconds> delay) {
  circuit_changes_.push_back({endpoint, delay});
  writer_wake_.notify();
}

std::size_t delivery_store::queued_writes() const {
  return records_.size() + releases_.size() + disables_.size() + webhook_deferrals_.size() +
         circuit_changes_.size();
}

void delivery_store::stop() {
  stopping_ = true;
  writer_wake_.notify();
}

asio::awaitable<void> delivery_store::run_writer() {
  for (;;) {
    abandon_expired_outcomes();
    if (queued_writes() == 0) {
      if (stopping_) break;
      co_await writer_wake_.wait_for(std::chrono::seconds(1));
      continue;
    }
    const bool written = co_await flush();
    if (written) {
      backoff_.reset();
      if (options_.on_written) options_.on_written();
    } else {
      // Keep everything queued and try again: PostgreSQL may be restarting.
      ++writes_failed_;
      retry_timer_.expires_after(backoff_.next());
      co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }
  claim_connection_.close();
  write_connection_.close();
}

void delivery_store::abandon_expired_outcomes() {
  // Past its lease, an outcome may no longer be written: another daemon may hold the delivery
  // now, and the database would refuse it anyway. Its attempt is recorded as 'lease_expired' by
  // whoever claims the delivery next.
  const auto now = steady_clock::now();
  const auto before = records_.size();
  std::erase_if(records_, [now](const attempt_record& r) { return r.lease_deadline <= now; });
  const auto abandoned = before - records_.size();
  if (abandoned == 0) return;
  if (isolate_remaining_ > 0) isolate_remaining_ = std::min(isolate_remaining_, records_.size());
  outcomes_abandoned_ += abandoned;
  log().warn(
      "delivery store: abandoned {} outcome(s) not written before their lease ended (PostgreSQL "
      "slow or away); those deliveries will be sent again",
      abandoned);
}

asio::awaitable<bool> delivery_store::flush() {
  const auto ec = co_await write_connection_.ensure_connected(options_.database);
  if (ec) {
    // The outage log reports connect failures (pg/outage_log.hpp).
    log().debug("delivery store: cannot connect: {}", write_connection_.last_error());
    co_return false;
  }
  // Outcomes first: a 410's own delivery is then 'dead' before its siblings are cancelled.
  if (!records_.empty()) {
    std::string json;
    const auto now = steady_clock::now();
    const auto count = json_batch(
        records_, batch_limit(), options_.max_write_batch_bytes, json,
        [now](std::string& out, const attempt_record& r) { append_record_json(out, r, now); });
    const auto error = co_await write_records(count, std::move(json));
    if (error) co_return after_failure(error, count, records_, "outcome");
  }
  if (!releases_.empty()) {
    std::string json;
    const auto count =
        json_batch(releases_, batch_limit(), options_.max_write_batch_bytes, json,
                   [](std::string& out, const released_delivery& r) {
                     out.append(fmt::format(
                         R"({{"delivery_id":{},"claim_token":{},"delay_ms":{}}})", r.delivery_id,
                         r.claim_token, std::max<std::int64_t>(r.delay.count(), 0)));
                   });
    const auto error = co_await write_releases(count, std::move(json));
    if (error) co_return after_failure(error, count, releases_, "release");
  }
  if (!disables_.empty()) {
    const auto error = co_await write_disable();
    if (error) co_return after_failure(error, 1, disables_, "webhook disable");
  }
  if (!webhook_deferrals_.empty()) {
    const auto error = co_await write_webhook_deferral();
    if (error) co_return after_failure(error, 1, webhook_deferrals_, "webhook deferral");
  }
  if (!circuit_changes_.empty()) {
    const auto error = co_await write_circuit_change();
    if (error) co_return after_failure(error, 1, circuit_changes_, "circuit change");
  }
  co_return true;
}

std::size_t delivery_store::batch_limit() const {
  return isolate_remaining_ > 0 ? std::size_t{1} : options_.max_write_batch;
}

template <typename Queue>
bool delivery_store::after_failure(std::error_code error, std::size_t count, Queue& queue,
                                   std::string_view what) {
  // Only an error one entry can cause fails the same way however often the batch is retried.
  // Everything else (lost connection, statement timeout, deadlock, a lock) is retried as it is,
  // later.
  if (error != pg::errc::query_failed || !pg::is_row_error(last_sqlstate_)) return false;
  // Retried whole, this batch would block every write behind it forever. Go one entry at a time
  // through it, so the others are written and the entry that fails alone is found.
  if (count > 1) {
    isolate_remaining_ = count;
    return true;
  }
  if constexpr (std::is_same_v<typename Queue::value_type, attempt_record>) {
    // What the receiver sent back (or the error's wording) may be what cannot be stored: keep the
    // outcome itself, without them.
    auto& record = queue.front();
    if (!record.details_dropped) {
      const log_ids ids{.delivery_id = record.delivery_id, .webhook_id = record.webhook_id};
      log_with(log(), ids, spdlog::level::warn,
               "delivery store: outcome of delivery {} attempt {} cannot be stored (SQLSTATE {}); "
               "writing it without response body and detail",
               record.delivery_id, record.attempt, last_sqlstate_);
      record.details_dropped = true;
      record.response_body.clear();
      record.error_detail = fmt::format("details not stored: SQLSTATE {}", last_sqlstate_);
      return true;
    }
  }
  log().error(
      "delivery store: dropping one {} that cannot be written (SQLSTATE {}); its delivery is "
      "sent again when its lease ends",
      what, last_sqlstate_);
  queue.pop_front();
  ++writes_dropped_;
  if (isolate_remaining_ > 0) --isolate_remaining_;
  return true;
}

asio::awaitable<std::error_code> delivery_store::write_records(std::size_t count,
                                                               std::string json) {
  ++write_statements_;
  const auto out = co_await write_connection_.execute(kRecord, std::string_view(json));
  if (!out) {
    log().warn("delivery store: writing {} outcomes (first: delivery {} attempt {}) failed: {}",
               count, records_.front().delivery_id, records_.front().attempt, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  const auto advanced = out.rows.int64(0, 1);
  if (advanced < static_cast<std::int64_t>(count)) {
    // Fenced out: the claim no longer holds these deliveries (lease over, or taken over).
    const auto fenced = static_cast<std::int64_t>(count) - advanced;
    outcomes_fenced_out_ += static_cast<std::uint64_t>(fenced);
    log().info("delivery store: {} of {} outcomes arrived after their lease and changed nothing",
               fenced, count);
  }
  if (options_.observer) {
    // The ones the database refused are listed as delivery_id:claim_token (usually none).
    std::unordered_set<std::string> fenced;
    std::stringstream listed{std::string(out.rows.text(0, 2))};
    for (std::string key; std::getline(listed, key, ',');) fenced.insert(key);
    const auto database_now = clock_.now();
    for (std::size_t i = 0; i < count; ++i) {
      const auto& r = records_[i];
      if (!fenced.empty() && fenced.contains(fmt::format("{}:{}", r.delivery_id, r.claim_token))) {
        continue;
      }
      options_.observer->outcome_written(r, database_now);
    }
  }
  pop_front(records_, count);
  if (isolate_remaining_ > 0) isolate_remaining_ -= std::min(isolate_remaining_, count);
  co_return std::error_code{};
}

std::uint64_t delivery_store::reconnects() const {
  return claim_connection_.reconnects() + write_connection_.reconnects();
}

asio::awaitable<std::error_code> delivery_store::write_releases(std::size_t count,
                                                                std::string json) {
  ++write_statements_;
  const auto out = co_await write_connection_.execute(kRelease, std::string_view(json));
  if (!out) {
    log().warn("delivery store: releasing {} deliveries (first: delivery {}) failed: {}", count,
               releases_.front().delivery_id, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  pop_front(releases_, count);
  if (isolate_remaining_ > 0) isolate_remaining_ -= std::min(isolate_remaining_, count);
  co_return std::error_code{};
}

asio::awaitable<std::error_code> delivery_store::write_disable() {
  const auto& entry = disables_.front();
  const auto out = co_await write_connection_.execute(kDisable, std::string_view(entry.webhook_id),
                                                      std::string_view(entry.reason));
  if (!out) {
    const log_ids ids{.webhook_id = entry.webhook_id};
    log_with(log(), ids, spdlog::level::warn, "delivery store: disabling webhook {} failed: {}",
             entry.webhook_id, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  const log_ids ids{.webhook_id = entry.webhook_id};
  log_with(log(), ids, spdlog::level::warn,
           "webhook {} disabled: {}; its pending deliveries are cancelled", entry.webhook_id,
           entry.reason);
  if (options_.observer) {
    options_.observer->webhook_disabled();
    options_.observer->deliveries_ended(delivery_end::cancelled,
                                        static_cast<std::uint64_t>(out.rows.affected_rows()));
  }
  disables_.pop_front();
  co_return std::error_code{};
}

asio::awaitable<std::error_code> delivery_store::write_webhook_deferral() {
  const auto& entry = webhook_deferrals_.front();
  const auto delay = std::to_string(std::max<std::int64_t>(entry.delay.count(), 0));
  const auto out = co_await write_connection_.execute(
      kDeferWebhook, std::string_view(entry.webhook_id), std::string_view(delay));
  if (!out) {
    const log_ids ids{.webhook_id = entry.webhook_id};
    log_with(log(), ids, spdlog::level::warn, "delivery store: deferring webhook {} failed: {}",
             entry.webhook_id, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  const log_ids ids{.webhook_id = entry.webhook_id};
  log_with(log(), ids, spdlog::level::warn,
           "webhook {}: endpoint down, circuit open; {} pending deliveries wait for the cool-down",
           entry.webhook_id, out.rows.affected_rows());
  webhook_deferrals_.pop_front();
  co_return std::error_code{};
}

asio::awaitable<std::error_code> delivery_store::write_circuit_change() {
  const auto& entry = circuit_changes_.front();
  pg::outcome out;
  if (entry.open_for) {
    const auto delay = std::to_string(std::max<std::int64_t>(entry.open_for->count(), 0));
    out = co_await write_connection_.execute(kOpenCircuit, std::string_view(entry.endpoint),
                                             std::string_view(delay),
                                             std::string_view(options_.instance_id));
  } else {
    out = co_await write_connection_.execute(kCloseCircuit, std::string_view(entry.endpoint),
                                             std::string_view(options_.instance_id));
  }
  if (!out) {
    log().warn("delivery store: recording the circuit of {} failed: {}", entry.endpoint,
               out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  circuit_changes_.pop_front();
  co_return std::error_code{};
}

}  // namespace outboxd
