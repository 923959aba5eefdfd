#include "outboxd/delivery_store.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "outboxd/json_text.hpp"

namespace outboxd {
namespace asio = boost::asio;
using std::chrono::system_clock;

namespace {

// Claim: take the due deliveries nobody holds, start an attempt on each under a lease, and read
// what sending needs. next_attempt_at doubles as the lease's end while 'delivering', so one index
// finds both due retries and deliveries whose holder died. For those, the attempt that never
// reported gets its record now ('lease_expired'), so every attempt number has exactly one.
constexpr std::string_view kClaim = R"sql(
WITH due AS (
    SELECT id, status, updated_at FROM outboxd.deliveries
    WHERE status IN ('pending', 'delivering') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE outboxd.deliveries AS d
    SET status = 'delivering', attempt_count = d.attempt_count + 1,
        next_attempt_at = now() + $2::interval, leased_until = now() + $2::interval,
        leased_by = $3, updated_at = now()
    FROM due
    WHERE d.id = due.id
    RETURNING d.id, d.event_id, d.webhook_id, d.message_id, d.attempt_count,
              due.status AS previous_status, due.updated_at AS previous_update
), abandoned AS (
    INSERT INTO outboxd.attempts
        (delivery_id, attempt_number, started_at, duration_ms, error_code, error_detail, succeeded)
    SELECT id, attempt_count - 1, previous_update, 0, 'lease_expired',
           'the daemon holding this attempt stopped before recording its outcome', false
    FROM claimed WHERE previous_status = 'delivering'
    ON CONFLICT DO NOTHING
), hooks AS (
    SELECT DISTINCT ON (s.webhook_id) s.webhook_id, s.url, s.headers::text AS headers, s.secret
    FROM outboxd.subscriptions AS s
    WHERE s.webhook_id IN (SELECT webhook_id FROM claimed)
    ORDER BY s.webhook_id
)
SELECT c.id, c.attempt_count, c.message_id::text, c.webhook_id::text,
       h.webhook_id IS NOT NULL,
       EXISTS (SELECT 1 FROM outboxd.disabled_webhooks AS x WHERE x.webhook_id = c.webhook_id),
       coalesce(h.url, ''), coalesce(h.headers, '{}'), coalesce(h.secret, ''),
       e.id, e.event, to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
       e.resource_id::text, coalesce(e.data::text, 'null')
FROM claimed AS c
JOIN outboxd.events AS e ON e.id = c.event_id
LEFT JOIN hooks AS h ON h.webhook_id = c.webhook_id
)sql";

// Outcomes, many per statement. The deliveries are locked first, in id order: a claim meeting one
// skips it (SKIP LOCKED) instead of deadlocking with this statement, and replicas writing at once
// lock in one order; a delivery deleted meanwhile (retention) takes its outcome with it. The
// attempt row is always written (replacing a 'lease_expired' placeholder if this daemon was
// presumed dead). The delivery moves on only if it is still at this attempt, except that a late
// success settles a delivery nobody has finished. Running the same batch twice changes nothing the
// second time.
constexpr std::string_view kRecord = R"sql(
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb) AS t(
        delivery_id bigint, attempt_number int, started_us bigint, duration_ms int,
        status_code int, error_code text, error_detail text, response_body text,
        succeeded boolean, next_status text, next_us bigint)
), locked AS (
    SELECT d.id, d.status, d.attempt_count FROM outboxd.deliveries AS d
    WHERE d.id IN (SELECT delivery_id FROM input)
    ORDER BY d.id
    FOR UPDATE
), recorded AS (
    INSERT INTO outboxd.attempts AS a
        (delivery_id, attempt_number, started_at, duration_ms, status_code, error_code,
         error_detail, response_body, succeeded)
    SELECT i.delivery_id, i.attempt_number,
           'epoch'::timestamptz + i.started_us * interval '1 microsecond', i.duration_ms,
           i.status_code, i.error_code, i.error_detail, i.response_body, i.succeeded
    FROM input AS i JOIN locked AS l ON l.id = i.delivery_id
    ON CONFLICT (delivery_id, attempt_number) DO UPDATE
        SET started_at = excluded.started_at, duration_ms = excluded.duration_ms,
            status_code = excluded.status_code, error_code = excluded.error_code,
            error_detail = excluded.error_detail, response_body = excluded.response_body,
            succeeded = excluded.succeeded
        WHERE a.error_code = 'lease_expired'
    RETURNING 1
), advanced AS (
    UPDATE outboxd.deliveries AS d
    SET status = i.next_status,
        next_attempt_at = coalesce('epoch'::timestamptz + i.next_us * interval '1 microsecond',
                                   now()),
        leased_until = NULL, leased_by = NULL, updated_at = now()
    FROM input AS i JOIN locked AS l ON l.id = i.delivery_id
    WHERE d.id = i.delivery_id
      AND ((l.status = 'delivering' AND l.attempt_count = i.attempt_number)
           OR (i.succeeded AND l.status IN ('pending', 'delivering')
               AND l.attempt_count >= i.attempt_number))
    RETURNING 1
)
SELECT (SELECT count(*) FROM recorded), (SELECT count(*) FROM advanced)
)sql";

// Unsent deliveries go back as they were: the attempt number returns to its previous value.
constexpr std::string_view kRelease = R"sql(
WITH input AS (
    SELECT * FROM jsonb_to_recordset($1::jsonb)
        AS t(delivery_id bigint, attempt_number int, due_us bigint)
), locked AS (
    SELECT d.id FROM outboxd.deliveries AS d
    WHERE d.id IN (SELECT delivery_id FROM input)
    ORDER BY d.id
    FOR UPDATE
)
UPDATE outboxd.deliveries AS d
SET status = 'pending', attempt_count = d.attempt_count - 1,
    next_attempt_at = 'epoch'::timestamptz + i.due_us * interval '1 microsecond',
    leased_until = NULL, leased_by = NULL, updated_at = now()
FROM input AS i JOIN locked AS l ON l.id = i.delivery_id
WHERE d.id = i.delivery_id AND d.attempt_count = i.attempt_number AND d.status = 'delivering'
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
SET next_attempt_at = 'epoch'::timestamptz + $2::bigint * interval '1 microsecond',
    updated_at = now()
WHERE webhook_id = $1::uuid AND status = 'pending'
  AND next_attempt_at < 'epoch'::timestamptz + $2::bigint * interval '1 microsecond'
)sql";

std::int64_t epoch_us(system_clock::time_point at) {
  return std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()).count();
}

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

}  // namespace

delivery_store::delivery_store(asio::any_io_executor executor, delivery_store_options options)
    : options_(std::move(options)),
      lease_interval_(fmt::format("{} milliseconds", options_.lease.count())),
      claim_connection_(executor),
      write_connection_(executor),
      writer_wake_(executor),
      backoff_(options_.reconnect),
      retry_timer_(executor) {}

asio::awaitable<claim_result> delivery_store::claim(std::size_t limit) {
  const auto ec = co_await claim_connection_.ensure_connected(options_.database);
  if (ec) co_return claim_result{.error = ec, .message = claim_connection_.last_error()};
  const auto count = std::to_string(limit);
  const auto out = co_await claim_connection_.execute(kClaim, std::string_view(count),
                                                      std::string_view(lease_interval_),
                                                      std::string_view(options_.instance_id));
  if (!out) co_return claim_result{.error = out.error, .message = out.message};

  claim_result result;
  const auto& rows = out.rows;
  result.deliveries.reserve(static_cast<std::size_t>(rows.rows()));
  for (int r = 0; r < rows.rows(); ++r) {
    result.deliveries.push_back(claimed_delivery{
        .id = rows.int64(r, 0),
        .attempt = static_cast<int>(rows.int64(r, 1)),
        .message_id = std::string(rows.text(r, 2)),
        .webhook_id = std::string(rows.text(r, 3)),
        .webhook_found = rows.boolean(r, 4),
        .webhook_disabled = rows.boolean(r, 5),
        .url = std::string(rows.text(r, 6)),
        .headers_json = std::string(rows.text(r, 7)),
        .secret = std::string(rows.text(r, 8)),
        .event_id = rows.int64(r, 9),
        .event = std::string(rows.text(r, 10)),
        .timestamp = std::string(rows.text(r, 11)),
        .resource_id = std::string(rows.text(r, 12)),
        .data = std::string(rows.text(r, 13)),
    });
  }
  co_return result;
}

void delivery_store::record(attempt_record record) {
  records_.push_back(std::move(record));
  writer_wake_.notify();
}

void delivery_store::release(std::int64_t delivery_id, int attempt, system_clock::time_point due) {
  releases_.push_back({delivery_id, attempt, due});
  writer_wake_.notify();
}

void delivery_store::disable_webhook(const std::string& webhook_id, const std::string& reason) {
  disables_.push_back({webhook_id, reason});
  writer_wake_.notify();
}

void delivery_store::defer_webhook(const std::string& webhook_id, system_clock::time_point until) {
  webhook_deferrals_.push_back({webhook_id, until});
  writer_wake_.notify();
}

std::size_t delivery_store::queued_writes() const {
  return records_.size() + releases_.size() + disables_.size() + webhook_deferrals_.size();
}

void delivery_store::stop() {
  stopping_ = true;
  writer_wake_.notify();
}

asio::awaitable<void> delivery_store::run_writer() {
  for (;;) {
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

asio::awaitable<bool> delivery_store::flush() {
  const auto ec = co_await write_connection_.ensure_connected(options_.database);
  if (ec) {
    // The outage log reports connect failures (pg/outage_log.hpp).
    spdlog::debug("delivery store: cannot connect: {}", write_connection_.last_error());
    co_return false;
  }
  // Outcomes first: a 410's own delivery is then 'dead' before its siblings are cancelled.
  if (!records_.empty()) {
    const auto count = batch_size(records_.size());
    const auto error = co_await write_records(count);
    if (error) co_return after_failure(error, count, records_, "outcome");
  }
  if (!releases_.empty()) {
    const auto count = batch_size(releases_.size());
    const auto error = co_await write_releases(count);
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
  co_return true;
}

std::size_t delivery_store::batch_size(std::size_t queued) const {
  return std::min(queued, isolate_remaining_ > 0 ? std::size_t{1} : options_.max_write_batch);
}

template <typename Queue>
bool delivery_store::after_failure(std::error_code error, std::size_t count, Queue& queue,
                                   std::string_view what) {
  // Only bad data (SQLSTATE classes 22 and 23) fails the same way however often it is retried.
  // Everything else (lost connection, statement timeout, deadlock, a lock, an operator's
  // trigger) is retried as it is, later.
  const bool bad_data = last_sqlstate_.starts_with("22") || last_sqlstate_.starts_with("23");
  if (error != pg::errc::query_failed || !bad_data) return false;
  // Retried whole, this batch would block every write behind it forever. Go one entry at a time
  // through it; an entry that fails alone is dropped.
  if (count > 1) {
    isolate_remaining_ = count;
    return true;
  }
  spdlog::error(
      "delivery store: dropping one {} that cannot be written (see the error above); "
      "a dropped outcome's delivery is retried when its lease ends",
      what);
  queue.pop_front();
  ++writes_dropped_;
  if (isolate_remaining_ > 0) --isolate_remaining_;
  return true;
}

namespace {

void append_record_json(std::string& json, const attempt_record& r) {
  json.append(fmt::format(
      R"({{"delivery_id":{},"attempt_number":{},"started_us":{},)"
      R"("duration_ms":{},"status_code":{},"succeeded":{},"next_status":")"
      R"({}","next_us":{},"error_code":)",
      r.delivery_id, r.attempt, epoch_us(r.started_at), r.duration.count(),
      r.status_code > 0 ? std::to_string(r.status_code) : "null", r.succeeded, status_name(r.next),
      r.next == attempt_record::next_status::pending ? std::to_string(epoch_us(r.next_attempt_at))
                                                     : "null"));
  append_nullable_string(json, r.error_code);
  json.append(R"(,"error_detail":)");
  append_nullable_string(json, r.error_detail);
  json.append(R"(,"response_body":)");
  append_nullable_string(json, r.response_body);
  json.push_back('}');
}

void append_release_json(std::string& json, const released_delivery& r) {
  json.append(fmt::format(R"({{"delivery_id":{},"attempt_number":{},"due_us":{}}})", r.delivery_id,
                          r.attempt, epoch_us(r.due)));
}

template <typename Entry, typename AppendOne>
std::string json_array(const std::deque<Entry>& queue, std::size_t count, AppendOne append_one) {
  std::string json = "[";
  for (std::size_t i = 0; i < count; ++i) {
    if (i > 0) json.push_back(',');
    append_one(json, queue[i]);
  }
  json.push_back(']');
  return json;
}

template <typename Entry>
void pop_front(std::deque<Entry>& queue, std::size_t count) {
  queue.erase(queue.begin(), queue.begin() + static_cast<std::ptrdiff_t>(count));
}

}  // namespace

asio::awaitable<std::error_code> delivery_store::write_records(std::size_t count) {
  const auto json = json_array(records_, count, append_record_json);
  const auto out = co_await write_connection_.execute(kRecord, std::string_view(json));
  if (!out) {
    spdlog::warn("delivery store: writing {} outcomes (first: delivery {} attempt {}) failed: {}",
                 count, records_.front().delivery_id, records_.front().attempt, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  const auto advanced = out.rows.int64(0, 1);
  if (advanced < static_cast<std::int64_t>(count)) {
    // Fenced out: another attempt of these deliveries started after our lease ran out.
    spdlog::info("delivery store: {} of {} outcomes arrived after their lease and changed no state",
                 static_cast<std::int64_t>(count) - advanced, count);
  }
  pop_front(records_, count);
  if (isolate_remaining_ > 0) --isolate_remaining_;
  co_return std::error_code{};
}

asio::awaitable<std::error_code> delivery_store::write_releases(std::size_t count) {
  const auto json = json_array(releases_, count, append_release_json);
  const auto out = co_await write_connection_.execute(kRelease, std::string_view(json));
  if (!out) {
    spdlog::warn("delivery store: releasing {} deliveries (first: delivery {}) failed: {}", count,
                 releases_.front().delivery_id, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  pop_front(releases_, count);
  if (isolate_remaining_ > 0) --isolate_remaining_;
  co_return std::error_code{};
}

asio::awaitable<std::error_code> delivery_store::write_disable() {
  const auto& entry = disables_.front();
  const auto out = co_await write_connection_.execute(kDisable, std::string_view(entry.webhook_id),
                                                      std::string_view(entry.reason));
  if (!out) {
    spdlog::warn("delivery store: disabling webhook {} failed: {}", entry.webhook_id, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  spdlog::warn("webhook {} disabled: {}; its pending deliveries are cancelled", entry.webhook_id,
               entry.reason);
  disables_.pop_front();
  co_return std::error_code{};
}

asio::awaitable<std::error_code> delivery_store::write_webhook_deferral() {
  const auto& entry = webhook_deferrals_.front();
  const auto until = std::to_string(epoch_us(entry.until));
  const auto out = co_await write_connection_.execute(
      kDeferWebhook, std::string_view(entry.webhook_id), std::string_view(until));
  if (!out) {
    spdlog::warn("delivery store: deferring webhook {} failed: {}", entry.webhook_id, out.message);
    last_sqlstate_ = out.sqlstate;
    co_return out.error;
  }
  spdlog::warn(
      "webhook {}: endpoint failing, circuit open; {} pending deliveries wait for the "
      "cool-down",
      entry.webhook_id, out.rows.affected_rows());
  webhook_deferrals_.pop_front();
  co_return std::error_code{};
}

}  // namespace outboxd
