#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
}  // namespace prometheus

namespace outboxd {

struct attempt_record;

// What one attempt came to, as an operator groups them: a small fixed set, so it can be a label.
enum class attempt_class {
  success,        // 2xx
  client_error,   // 4xx other than 429 (410 Gone included)
  rate_limited,   // 429
  server_error,   // 5xx
  timeout,        // the request's deadline passed
  connect_error,  // refused, DNS, reset: the endpoint could not be reached or dropped us
  tls_error,      // handshake or certificate failure
  refused,        // never sent: blocked address, https required, port not allowed, invalid
                  // URL/header/secret, payload too large
  cancelled,      // never sent: the webhook was deleted, unsubscribed or disabled
  lease_expired,  // the holder died before recording its outcome (lease_expired, crash_loop)
  other,          // anything else (I/O or protocol error, 1xx/3xx, internal)
};
inline constexpr std::size_t kAttemptClasses = 11;

std::string_view attempt_class_name(attempt_class c);
// From an attempt row's status_code (0: no HTTP response) and error_code, the way
// outboxd.attempts stores them: the same function classifies live outcomes and, in the tests,
// the table, so the two agree.
attempt_class classify_attempt_outcome(int status_code, std::string_view error_code);

// How a delivery ended for good.
enum class delivery_end { succeeded, dead, cancelled };
inline constexpr std::size_t kDeliveryEnds = 3;

// Values the components count themselves, read at scrape time on the daemon's one thread
// (pipeline::scrape). Every field is a metric of the same meaning in docs/metrics.md.
struct metrics_snapshot {
  std::uint64_t events_dispatched = 0;
  std::uint64_t deliveries_created = 0;
  std::uint64_t events_set_aside = 0;
  std::uint64_t dispatch_batch_failures = 0;
  std::uint64_t wakeups_notify = 0;
  std::uint64_t wakeups_poll = 0;
  std::uint64_t circuit_openings = 0;
  std::uint64_t open_circuits = 0;
  std::uint64_t requests_in_flight = 0;
  std::uint64_t outcomes_abandoned = 0;
  std::uint64_t outcomes_fenced_out = 0;
  std::uint64_t outcome_writes_failed = 0;
  std::uint64_t outcomes_queued = 0;
  // Per session: listener, dispatcher, delivery (claim and write), sampler.
  std::uint64_t reconnects_listener = 0;
  std::uint64_t reconnects_dispatcher = 0;
  std::uint64_t reconnects_delivery = 0;
  std::uint64_t reconnects_sampler = 0;
  // Retention's deletions, and reports to the IAM.
  std::uint64_t purged_deliveries = 0;
  std::uint64_t purged_attempts = 0;
  std::uint64_t purged_events = 0;
  std::uint64_t iam_reports_written = 0;
  std::uint64_t iam_reports_failed = 0;
  bool listener_subscribed = false;
  // The HTTP client's keep-alive pool and resolver (http/client.hpp, http/resolver.hpp).
  std::uint64_t idle_connections = 0;
  std::uint64_t idle_closed_endpoint_cap = 0;
  std::uint64_t idle_closed_total_cap = 0;
  std::uint64_t idle_closed_timeout = 0;
  std::uint64_t dns_lookups = 0;
  std::uint64_t dns_cache_hits = 0;
  std::uint64_t dns_timeouts = 0;
  std::uint64_t dns_in_flight = 0;
  std::optional<double> clock_offset_seconds;  // database - local; empty until measured
  // From the sampler's last successful query; empty before the first.
  struct backlog {
    std::uint64_t outbox_rows = 0;     // capped at kBacklogCap
    std::uint64_t due_deliveries = 0;  // capped at kBacklogCap
    double oldest_event_age_seconds = 0;
    double seconds_since_sample = 0;
  };
  std::optional<backlog> sampled;
};

// Every metric outboxd exports, declared in metrics.cpp on one registry. Counters that a
// component already keeps are copied in at scrape time (update()); what only exists as an attempt
// finishes (outcome classes, latencies) is observed here by the delivery store, once the outcome
// is written. Not thread-safe beyond what prometheus-cpp gives: use on the daemon's thread.
class metrics {
 public:
  // Counts above this are reported as this: the sampler's queries stop counting there, so a
  // scrape costs the same with a million rows behind as with ten thousand.
  static constexpr std::uint64_t kBacklogCap = 10'000;

  metrics();
  ~metrics();
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  // An attempt's outcome landed in outboxd.attempts (written by this daemon's claim, not fenced
  // out). `database_now` is the database's clock, for the commit-to-success latency.
  void outcome_written(const attempt_record& record,
                       std::chrono::system_clock::time_point database_now);
  // The claim recorded an attempt whose lease had expired; crash_looped: the delivery is dead.
  void lease_expiry_recorded(bool crash_looped);
  // Deliveries that ended without an attempt of their own (a 410 cancels the webhook's rest).
  void deliveries_ended(delivery_end end, std::uint64_t count);
  // A webhook was disabled because its endpoint answered 410 Gone.
  void webhook_disabled();

  // Copies the components' own counters and gauges in.
  void update(const metrics_snapshot& snapshot);
  // The Prometheus text exposition format 0.0.4 of everything.
  std::string serialize() const;

  std::uint64_t attempts(attempt_class c) const;
  std::uint64_t finished(delivery_end end) const;

 private:
  struct families;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<families> families_;
};

// The Content-Type of serialize()'s output.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace outboxd
