#include "outboxd/deliverer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unordered_map>

#include "outboxd/json_text.hpp"
#include "outboxd/log.hpp"
#include "outboxd/message.hpp"

namespace outboxd {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("deliverer");
  return *component;
}

// From now until `at`, for a relative delay the database adds to its own now().
milliseconds delay_until(steady_clock::time_point at, steady_clock::time_point now) {
  return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(at - now));
}

}  // namespace

deliverer::deliverer(asio::any_io_executor executor, deliverer_options options,
                     delivery_store& store, http::client& client, const retry_policy& policy,
                     wake_signal& work_ready)
    : executor_(executor),
      options_(options),
      store_(store),
      client_(client),
      policy_(policy),
      work_ready_(work_ready),
      slot_freed_(executor),
      scheduler_(options.scheduling),
      backoff_(options.reconnect),
      retry_timer_(executor) {}

void deliverer::set_scheduling(const scheduler_options& scheduling) {
  options_.scheduling = scheduling;
  scheduler_.set_options(scheduling);
  slot_freed_.notify();  // a higher limit is room to claim
}

void deliverer::stop() {
  stopping_ = true;
  retry_timer_.cancel();
  work_ready_.notify();
  slot_freed_.notify();
}

asio::awaitable<void> deliverer::run() {
  while (!stopping_) {
    // Room to claim: free scheduler slots, and room for outcomes not yet written. Every claimed
    // delivery ends as one queued write, so work in the scheduler counts as well.
    const auto unwritten = store_.queued_writes() + scheduler_.in_flight() + scheduler_.queued();
    const auto write_room = unwritten >= options_.max_unwritten_outcomes
                                ? 0
                                : options_.max_unwritten_outcomes - unwritten;
    const auto limit = std::min({scheduler_.capacity(), write_room, options_.claim_batch});
    if (limit == 0) {
      co_await slot_freed_.wait_for(options_.poll_interval);
      continue;
    }
    auto claimed = co_await store_.claim(limit);
    if (claimed.error) {
      if (stopping_) break;
      // A connection failure is the outage log's to report (pg/outage_log.hpp).
      const auto level =
          pg::is_connection_error(claimed.error) ? spdlog::level::debug : spdlog::level::warn;
      log().log(level, "deliverer: claim failed: {}", claimed.message);
      retry_timer_.expires_after(backoff_.next());
      co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    backoff_.reset();
    const auto got = claimed.deliveries.size();
    accept(std::move(claimed.deliveries));
    // A full batch means more may be due right now; otherwise sleep until new work or the tick.
    if (got < limit && !stopping_) co_await work_ready_.wait_for(options_.poll_interval);
  }

  // Shutdown: what waits unsent goes back to the database as it was; what is in flight finishes
  // (each attempt is bounded by the request timeout).
  for (const auto& item : scheduler_.drain_waiting())
    store_.release(item.delivery, milliseconds(0));
  while (scheduler_.in_flight() > 0) co_await slot_freed_.wait_for(options_.poll_interval);
}

void deliverer::accept(std::vector<claimed_delivery> claimed) {
  const auto now = steady_clock::now();
  // Built once per event: every subscriber and every retry gets the same bytes.
  std::unordered_map<std::int64_t, std::shared_ptr<const std::string>> bodies;
  actions next;
  for (auto& delivery : claimed) {
    if (delivery.crash_looped) {
      // The claim already made it dead and recorded why; there is nothing to send.
      warn_operator(delivery, "crash_loop", "its lease kept expiring without an outcome");
      continue;
    }
    if (!delivery.webhook_found) {
      finish_unsent(delivery, "webhook_deleted", "the webhook no longer exists in the IAM",
                    attempt_record::next_status::cancelled);
      continue;
    }
    if (!delivery.webhook_subscribed) {
      finish_unsent(delivery, "webhook_unsubscribed",
                    "the webhook no longer subscribes to this event in this realm",
                    attempt_record::next_status::cancelled);
      continue;
    }
    if (delivery.webhook_disabled) {
      finish_unsent(delivery, "webhook_disabled", "the webhook was disabled after a 410 Gone",
                    attempt_record::next_status::cancelled);
      continue;
    }
    auto parsed = http::parse_endpoint_url(delivery.url);
    auto& url = parsed.url;
    if (!url) {
      auto record = attempt_record::of(delivery);
      record.error_code = "invalid_url";
      // Says what rule the URL breaks without quoting it: it may carry a credential.
      record.error_detail =
          fmt::format("the webhook's endpoint is not a usable http(s) URL: {}", parsed.problem);
      settle(record, delivery, 0, std::nullopt);
      record_outcome(delivery, std::move(record));
      continue;
    }
    auto& body = bodies[delivery.event_id];
    if (!body) {
      body = std::make_shared<const std::string>(build_body({.event = delivery.event,
                                                             .timestamp = delivery.timestamp,
                                                             .resource_id = delivery.resource_id,
                                                             .data = delivery.data}));
    }
    if (body->size() > options_.max_payload_bytes) {
      finish_unsent(delivery, "payload_too_large",
                    fmt::format("the body is {} bytes; the limit is {}", body->size(),
                                options_.max_payload_bytes),
                    attempt_record::next_status::dead);
      continue;
    }
    // Limits and the breaker are per endpoint: scheme, host and port, the server they protect.
    auto endpoint = url->key();
    webhook_limit webhook{delivery.webhook_id, delivery.max_in_flight};
    work item{std::move(delivery), body, std::move(*url), endpoint};
    scheduler_.submit(endpoint, std::move(item), now, next, std::move(webhook));
  }
  apply(next);
}

void deliverer::apply(actions& next) {
  const auto now = steady_clock::now();
  for (auto& started : next.start) {
    started.item.breaker_trial = started.trial;
    asio::co_spawn(executor_, attempt(std::move(started.item)), [](std::exception_ptr error) {
      // attempt() handles its own errors; reaching here is a bug worth a loud line, not a crash.
      if (!error) return;
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log().critical("deliverer: attempt failed unexpectedly: {}", e.what());
      }
    });
  }
  for (auto& deferred : next.defer) {
    store_.release(deferred.item.delivery, delay_until(deferred.until, now));
  }
  next.start.clear();
  next.defer.clear();
}

asio::awaitable<void> deliverer::attempt(work item) {
  auto signal = endpoint_signal::none;
  // Waiting for a slot may have eaten into the lease: rather than send late, give it back unsent.
  if (!store_.may_send(item.delivery, steady_clock::now())) {
    store_.release(item.delivery, milliseconds(0));
  } else {
    auto record = attempt_record::of(item.delivery);
    try {
      co_await send(item, record, signal);
    } catch (const std::exception& e) {
      record.error_code = "internal";
      record.error_detail = e.what();
      settle(record, item.delivery, 0, std::nullopt);
    }
    record_outcome(item.delivery, std::move(record));
  }
  actions next;
  const webhook_limit webhook{item.delivery.webhook_id, item.delivery.max_in_flight};
  scheduler_.finish(item.endpoint, item.breaker_trial, signal, steady_clock::now(), next, webhook);
  if (next.circuit_opened_until) {
    circuit_openings_.fetch_add(1, std::memory_order_relaxed);
    const auto open_for = delay_until(*next.circuit_opened_until, steady_clock::now());
    // The endpoint's circuit just opened: park the webhook's whole backlog until the cool-down
    // ends, in one statement, instead of claiming and handing it back batch after batch.
    store_.defer_webhook(item.delivery.webhook_id, open_for);
    store_.record_circuit(item.endpoint, open_for);
  }
  if (next.circuit_closed) store_.record_circuit(item.endpoint, std::nullopt);
  apply(next);
  slot_freed_.notify();
}

asio::awaitable<void> deliverer::send(work& item, attempt_record& record, endpoint_signal& signal) {
  const auto& delivery = item.delivery;
  // The database's clock, not this host's: receivers reject a webhook-timestamp far from their
  // own time, and a host whose clock is off must not make every signature look stale.
  const auto timestamp =
      std::chrono::duration_cast<std::chrono::seconds>(store_.clock().now().time_since_epoch())
          .count();
  std::vector<std::string_view> previous_secrets;
  if (!delivery.previous_secret.empty()) previous_secrets.push_back(delivery.previous_secret);
  auto signing = sign({.custom_headers_json = delivery.headers_json,
                       .secret = delivery.secret,
                       .previous_secrets = std::move(previous_secrets),
                       .message_id = delivery.message_id,
                       .timestamp = timestamp,
                       .body = *item.body});
  if (!signing.ok()) {
    // The webhook's own configuration is broken; the endpoint was never asked.
    record.error_code = signing.error_code;
    record.error_detail = signing.error_detail;
    settle(record, delivery, 0, std::nullopt);
    co_return;
  }
  const http::request request{
      .url = item.url, .headers = std::move(signing.headers), .body = item.body};
  const auto response = co_await client_.post(request);
  signal = classify_attempt(response.status, response.error_code);

  record.duration = response.duration;
  record.status_code = response.status;
  record.error_code = response.error_code;
  record.error_detail = response.error_detail;
  record.response_body = to_storable_text(response.body_prefix);
  std::optional<milliseconds> retry_after;
  if (response.retry_after) {
    // A Retry-After date is read against the receiver's own Date header when it sent one, else
    // against the database's clock: never against this host's alone.
    const auto receiver_now = response.date ? parse_http_date(*response.date) : std::nullopt;
    retry_after =
        parse_retry_after(*response.retry_after, receiver_now.value_or(store_.clock().now()));
  }
  settle(record, delivery, response.status, retry_after);

  if (response.status == 410) {
    record.next = attempt_record::next_status::dead;
    store_.disable_webhook(delivery.webhook_id, "the endpoint answered 410 Gone");
  }
  const log_ids ids{.delivery_id = delivery.id, .webhook_id = delivery.webhook_id};
  log_with(log(), ids, spdlog::level::debug, "delivery {} attempt {} to webhook {}: {} in {} ms",
           delivery.id, delivery.attempt, delivery.webhook_id,
           response.status ? std::to_string(response.status) : response.error_code,
           response.duration.count());
}

void deliverer::settle(attempt_record& record, const claimed_delivery& delivery, int status_code,
                       std::optional<milliseconds> retry_after) {
  // The schedule counts tries, not attempt records: an attempt whose lease expired (the daemon
  // died) neither delays the next retry nor brings the delivery closer to dead. The webhook's own
  // policy, when it has one, replaces the daemon's schedule and attempt limit.
  const auto decision =
      policy_.decide(delivery.try_number, status_code, retry_after, delivery.retry);
  switch (decision.what) {
    case retry_decision::next::succeeded:
      record.succeeded = true;
      record.next = attempt_record::next_status::succeeded;
      break;
    case retry_decision::next::retry:
      record.next = attempt_record::next_status::pending;
      record.next_delay = decision.delay;
      break;
    case retry_decision::next::dead:
      record.next = attempt_record::next_status::dead;
      break;
  }
}

void deliverer::finish_unsent(const claimed_delivery& delivery, std::string error_code,
                              std::string error_detail, attempt_record::next_status next) {
  auto record = attempt_record::of(delivery);
  record.error_code = std::move(error_code);
  record.error_detail = std::move(error_detail);
  record.next = next;
  record_outcome(delivery, std::move(record));
}

void deliverer::record_outcome(const claimed_delivery& delivery, attempt_record record) {
  // What only an operator can fix (the webhook's row, the allow-list, the payload) or what ends a
  // delivery for good is worth a warning; a receiver's ordinary failure that is retried is not.
  static constexpr std::string_view kActionable[] = {
      "blocked_address", "https_required", "port_not_allowed", "invalid_url",
      "invalid_header",  "invalid_secret", "payload_too_large"};
  const bool actionable = std::find(std::begin(kActionable), std::end(kActionable),
                                    record.error_code) != std::end(kActionable);
  if (actionable || record.next == attempt_record::next_status::dead) {
    const auto what = !record.error_code.empty() ? record.error_code
                      : record.status_code > 0   ? fmt::format("HTTP {}", record.status_code)
                                                 : std::string("failed");
    warn_operator(delivery, what,
                  record.next == attempt_record::next_status::dead
                      ? fmt::format("dead after attempt {}", record.attempt)
                      : fmt::format("attempt {}, retried on schedule", record.attempt));
  }
  store_.record(std::move(record));
}

void deliverer::warn_operator(const claimed_delivery& delivery, std::string_view code,
                              std::string_view what) {
  // One line per webhook per interval, so a broken webhook with a busy event stream is visible
  // without drowning the log; the next line says how many were held back.
  const auto verdict = operator_warnings_.allow(delivery.webhook_id, steady_clock::now());
  if (!verdict) return;
  const log_ids ids{.delivery_id = delivery.id, .webhook_id = delivery.webhook_id};
  log_with(
      log(), ids, spdlog::level::warn, "webhook {}: delivery {} {}: {}{}", delivery.webhook_id,
      delivery.id, code, what,
      verdict.suppressed > 0
          ? fmt::format(" ({} more for this webhook since its last warning)", verdict.suppressed)
          : std::string());
}

}  // namespace outboxd
