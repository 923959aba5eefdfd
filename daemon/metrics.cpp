#include "outboxd/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <limits>

#include "outboxd/delivery_store.hpp"

namespace outboxd {

namespace {

constexpr std::array<std::string_view, kAttemptClasses> kClassNames{
    "success",   "client_error", "rate_limited", "server_error",  "timeout", "connect_error",
    "tls_error", "refused",      "cancelled",    "lease_expired", "other"};
constexpr std::array<std::string_view, kDeliveryEnds> kEndNames{"succeeded", "dead", "cancelled"};

template <typename Table>
bool listed(const Table& table, std::string_view code) {
  return std::find(std::begin(table), std::end(table), code) != std::end(table);
}

// A counter that mirrors a component's own: moved up to the component's value. The component's
// counters only grow, so the difference is never negative.
void mirror(prometheus::Counter& counter, std::uint64_t value) {
  const auto delta = static_cast<double>(value) - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

// Attempts that left the daemon: the only ones whose duration says something about a receiver.
bool was_sent(attempt_class c) {
  return c != attempt_class::refused && c != attempt_class::cancelled &&
         c != attempt_class::lease_expired;
}

}  // namespace

std::string_view attempt_class_name(attempt_class c) {
  return kClassNames[static_cast<std::size_t>(c)];
}

attempt_class classify_attempt_outcome(int status_code, std::string_view error_code) {
  if (status_code >= 200 && status_code <= 299) return attempt_class::success;
  if (status_code == 429) return attempt_class::rate_limited;
  if (status_code >= 400 && status_code <= 499) return attempt_class::client_error;
  if (status_code >= 500 && status_code <= 599) return attempt_class::server_error;
  if (status_code != 0) return attempt_class::other;
  // No HTTP response: the error codes of the HTTP client, the deliverer and the claim.
  static constexpr std::string_view kConnect[] = {"connect_refused", "dns", "dns_timeout", "reset"};
  static constexpr std::string_view kRefused[] = {
      "blocked_address", "https_required", "port_not_allowed", "invalid_url",
      "invalid_header",  "invalid_secret", "payload_too_large"};
  static constexpr std::string_view kCancelled[] = {"webhook_deleted", "webhook_unsubscribed",
                                                    "webhook_disabled"};
  static constexpr std::string_view kExpired[] = {"lease_expired", "crash_loop"};
  if (error_code == "timeout") return attempt_class::timeout;
  // tls, tls_certificate_expired, tls_hostname_mismatch, tls_untrusted, ...: the client's TLS
  // codes all start with "tls".
  if (error_code == "tls" || error_code.starts_with("tls_")) return attempt_class::tls_error;
  if (listed(kConnect, error_code)) return attempt_class::connect_error;
  if (listed(kRefused, error_code)) return attempt_class::refused;
  if (listed(kCancelled, error_code)) return attempt_class::cancelled;
  if (listed(kExpired, error_code)) return attempt_class::lease_expired;
  return attempt_class::other;
}

// Every metric, in one place. Names follow the Prometheus naming guide: outboxd_ prefix, base
// units, _total for counters; labels take values from small fixed sets only (never a webhook,
// URL or host).
struct metrics::families {
  explicit families(prometheus::Registry& r) : registry(r) {}

  prometheus::Registry& registry;

  prometheus::Counter& counter(const std::string& name, const std::string& help,
                               const prometheus::Labels& labels = {}) {
    return prometheus::BuildCounter().Name(name).Help(help).Register(registry).Add(labels);
  }
  prometheus::Gauge& gauge(const std::string& name, const std::string& help) {
    return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  }

  prometheus::Counter& events_dispatched =
      counter("outboxd_events_dispatched_total", "Outbox events fanned out into deliveries.");
  prometheus::Counter& deliveries_created =
      counter("outboxd_deliveries_created_total", "Delivery rows created by fan-out.");
  prometheus::Counter& events_set_aside =
      counter("outboxd_poison_events_total",
              "Outbox events that could not be fanned out and were moved to "
              "outboxd.poison_events.");
  prometheus::Counter& dispatch_batch_failures =
      counter("outboxd_dispatch_batch_failures_total",
              "Dispatch transactions that failed as a whole and were retried after a backoff.");

  prometheus::Family<prometheus::Counter>& attempts_family =
      prometheus::BuildCounter()
          .Name("outboxd_attempts_total")
          .Help("Delivery attempts recorded in outboxd.attempts by this daemon, by outcome class.")
          .Register(registry);
  std::array<prometheus::Counter*, kAttemptClasses> attempts = [this] {
    std::array<prometheus::Counter*, kAttemptClasses> out{};
    for (std::size_t i = 0; i < kAttemptClasses; ++i) {
      out[i] = &attempts_family.Add({{"class", std::string(kClassNames[i])}});
    }
    return out;
  }();

  prometheus::Family<prometheus::Counter>& finished_family =
      prometheus::BuildCounter()
          .Name("outboxd_deliveries_finished_total")
          .Help("Deliveries that reached a final state through this daemon, by state.")
          .Register(registry);
  std::array<prometheus::Counter*, kDeliveryEnds> finished = [this] {
    std::array<prometheus::Counter*, kDeliveryEnds> out{};
    for (std::size_t i = 0; i < kDeliveryEnds; ++i) {
      out[i] = &finished_family.Add({{"state", std::string(kEndNames[i])}});
    }
    return out;
  }();

  prometheus::Histogram& attempt_duration =
      prometheus::BuildHistogram()
          .Name("outboxd_attempt_duration_seconds")
          .Help(
              "Duration of attempts that were sent, connect included, until the response or "
              "the error.")
          .Register(registry)
          .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                           1, 2.5, 5, 10, 15, 30, 60});
  prometheus::Histogram& commit_to_success =
      prometheus::BuildHistogram()
          .Name("outboxd_delivery_latency_seconds")
          .Help(
              "From the event's commit (outbox created_at) to its delivery's successful "
              "attempt being recorded, by the database's clock.")
          .Register(registry)
          .Add({},
               prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
                                                       30, 60, 300, 900, 3600, 7200, 21600, 86400});

  prometheus::Gauge& requests_in_flight =
      gauge("outboxd_requests_in_flight", "Webhook requests in flight now.");
  prometheus::Gauge& outcomes_queued =
      gauge("outboxd_outcomes_queued", "Outcomes and releases waiting to be written.");
  prometheus::Counter& outcome_writes_failed =
      counter("outboxd_outcome_write_failures_total",
              "Outcome write rounds that failed and were retried after a backoff.");
  prometheus::Counter& outcomes_abandoned =
      counter("outboxd_outcomes_abandoned_total",
              "Outcomes not written before their lease ended; those deliveries are sent again.");
  prometheus::Counter& outcomes_fenced_out =
      counter("outboxd_outcomes_fenced_out_total",
              "Outcomes the database refused because their claim no longer held the delivery.");

  prometheus::Family<prometheus::Counter>& wakeups_family =
      prometheus::BuildCounter()
          .Name("outboxd_dispatch_wakeups_total")
          .Help(
              "Dispatcher wake-ups, by source: a NOTIFY from the outbox trigger or the poll "
              "interval.")
          .Register(registry);
  prometheus::Counter& wakeups_notify = wakeups_family.Add({{"source", "notify"}});
  prometheus::Counter& wakeups_poll = wakeups_family.Add({{"source", "poll"}});

  prometheus::Family<prometheus::Counter>& reconnects_family =
      prometheus::BuildCounter()
          .Name("outboxd_database_reconnects_total")
          .Help(
              "PostgreSQL sessions opened again after an earlier one of the same component, "
              "by component.")
          .Register(registry);
  prometheus::Counter& reconnects_listener = reconnects_family.Add({{"session", "listener"}});
  prometheus::Counter& reconnects_dispatcher = reconnects_family.Add({{"session", "dispatcher"}});
  prometheus::Counter& reconnects_delivery = reconnects_family.Add({{"session", "delivery"}});
  prometheus::Counter& reconnects_sampler = reconnects_family.Add({{"session", "sampler"}});

  prometheus::Family<prometheus::Counter>& purged_family =
      prometheus::BuildCounter()
          .Name("outboxd_retention_purged_rows_total")
          .Help("Rows retention deleted (finished history past --retention), by table.")
          .Register(registry);
  prometheus::Counter& purged_deliveries = purged_family.Add({{"table", "deliveries"}});
  prometheus::Counter& purged_attempts = purged_family.Add({{"table", "attempts"}});
  prometheus::Counter& purged_events = purged_family.Add({{"table", "events"}});

  prometheus::Family<prometheus::Counter>& iam_reports_family =
      prometheus::BuildCounter()
          .Name("outboxd_iam_reports_total")
          .Help(
              "Reports of a webhook's last finished delivery to the IAM (--report-to-iam), by "
              "result: written, or failed (dropped; the next finish reports again).")
          .Register(registry);
  prometheus::Counter& iam_reports_written = iam_reports_family.Add({{"result", "written"}});
  prometheus::Counter& iam_reports_failed = iam_reports_family.Add({{"result", "failed"}});

  prometheus::Gauge& idle_connections =
      gauge("outboxd_idle_connections", "Idle keep-alive connections to receivers kept now.");
  prometheus::Family<prometheus::Counter>& idle_closed_family =
      prometheus::BuildCounter()
          .Name("outboxd_idle_connections_closed_total")
          .Help(
              "Idle keep-alive connections closed by outboxd, by reason: over the per-endpoint "
              "cap, over --max-idle-connections, or idle past --idle-connection-timeout.")
          .Register(registry);
  prometheus::Counter& idle_closed_endpoint_cap =
      idle_closed_family.Add({{"reason", "endpoint_cap"}});
  prometheus::Counter& idle_closed_total_cap = idle_closed_family.Add({{"reason", "total_cap"}});
  prometheus::Counter& idle_closed_timeout = idle_closed_family.Add({{"reason", "idle_timeout"}});
  prometheus::Counter& dns_lookups =
      counter("outboxd_dns_lookups_total", "Host name lookups run on a resolver thread.");
  prometheus::Counter& dns_cache_hits =
      counter("outboxd_dns_cache_hits_total", "Host names answered from the resolver's cache.");
  prometheus::Counter& dns_timeouts =
      counter("outboxd_dns_timeouts_total",
              "Requests for a host name's addresses that got no DNS answer in time (dns_timeout).");
  prometheus::Gauge& dns_in_flight =
      gauge("outboxd_dns_lookups_in_flight",
            "Host name lookups asked for and not answered yet, late ones still running included.");

  prometheus::Gauge& listener_subscribed =
      gauge("outboxd_listener_subscribed", "1 while the LISTEN session is subscribed, else 0.");
  prometheus::Counter& circuit_openings =
      counter("outboxd_circuit_openings_total", "Times an endpoint's circuit breaker opened.");
  prometheus::Gauge& open_circuits =
      gauge("outboxd_open_circuits", "Endpoints whose circuit breaker is open now.");
  prometheus::Counter& webhooks_disabled =
      counter("outboxd_webhooks_disabled_total",
              "Webhooks this daemon disabled because their endpoint answered 410 Gone.");
  prometheus::Gauge& clock_offset =
      gauge("outboxd_database_clock_offset_seconds",
            "The database's clock minus this host's (positive: this host is behind), as last "
            "measured.");

  prometheus::Gauge& outbox_backlog =
      gauge("outboxd_outbox_backlog",
            "Undispatched rows in outboxd.outbox, counted up to 10000 (the sampler's cap).");
  prometheus::Gauge& due_deliveries =
      gauge("outboxd_due_deliveries",
            "Deliveries due now (pending or with an expired lease), counted up to 10000.");
  prometheus::Gauge& oldest_event_age =
      gauge("outboxd_oldest_undispatched_event_age_seconds",
            "Age of the oldest row in outboxd.outbox by the database's clock; 0 when empty.");
  prometheus::Gauge& sample_age =
      gauge("outboxd_backlog_sample_age_seconds",
            "Seconds since the backlog gauges were last read from the database.");

  prometheus::Gauge& build_info =
      prometheus::BuildGauge()
          .Name("outboxd_build_info")
          .Help("Always 1; the version label says which outboxd this is.")
          .Register(registry)
          .Add({{"version", OUTBOXD_VERSION}});
};

metrics::metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<families>(*registry_)) {
  families_->build_info.Set(1);
}

metrics::~metrics() = default;

void metrics::outcome_written(const attempt_record& record,
                              std::chrono::system_clock::time_point database_now) {
  const auto c = classify_attempt_outcome(record.status_code, record.error_code);
  families_->attempts[static_cast<std::size_t>(c)]->Increment();
  if (was_sent(c)) {
    families_->attempt_duration.Observe(std::chrono::duration<double>(record.duration).count());
  }
  switch (record.next) {
    case attempt_record::next_status::pending:
      break;
    case attempt_record::next_status::succeeded:
      families_->finished[static_cast<std::size_t>(delivery_end::succeeded)]->Increment();
      if (record.event_created.time_since_epoch().count() != 0) {
        families_->commit_to_success.Observe(std::max(
            0.0, std::chrono::duration<double>(database_now - record.event_created).count()));
      }
      break;
    case attempt_record::next_status::dead:
      families_->finished[static_cast<std::size_t>(delivery_end::dead)]->Increment();
      break;
    case attempt_record::next_status::cancelled:
      families_->finished[static_cast<std::size_t>(delivery_end::cancelled)]->Increment();
      break;
  }
}

void metrics::lease_expiry_recorded(bool crash_looped) {
  families_->attempts[static_cast<std::size_t>(attempt_class::lease_expired)]->Increment();
  if (crash_looped) deliveries_ended(delivery_end::dead, 1);
}

void metrics::deliveries_ended(delivery_end end, std::uint64_t count) {
  if (count == 0) return;
  families_->finished[static_cast<std::size_t>(end)]->Increment(static_cast<double>(count));
}

void metrics::webhook_disabled() { families_->webhooks_disabled.Increment(); }

void metrics::update(const metrics_snapshot& s) {
  auto& f = *families_;
  mirror(f.events_dispatched, s.events_dispatched);
  mirror(f.deliveries_created, s.deliveries_created);
  mirror(f.events_set_aside, s.events_set_aside);
  mirror(f.dispatch_batch_failures, s.dispatch_batch_failures);
  mirror(f.wakeups_notify, s.wakeups_notify);
  mirror(f.wakeups_poll, s.wakeups_poll);
  mirror(f.circuit_openings, s.circuit_openings);
  mirror(f.outcomes_abandoned, s.outcomes_abandoned);
  mirror(f.outcomes_fenced_out, s.outcomes_fenced_out);
  mirror(f.outcome_writes_failed, s.outcome_writes_failed);
  mirror(f.reconnects_listener, s.reconnects_listener);
  mirror(f.reconnects_dispatcher, s.reconnects_dispatcher);
  mirror(f.reconnects_delivery, s.reconnects_delivery);
  mirror(f.reconnects_sampler, s.reconnects_sampler);
  mirror(f.purged_deliveries, s.purged_deliveries);
  mirror(f.purged_attempts, s.purged_attempts);
  mirror(f.purged_events, s.purged_events);
  mirror(f.iam_reports_written, s.iam_reports_written);
  mirror(f.iam_reports_failed, s.iam_reports_failed);
  mirror(f.idle_closed_endpoint_cap, s.idle_closed_endpoint_cap);
  mirror(f.idle_closed_total_cap, s.idle_closed_total_cap);
  mirror(f.idle_closed_timeout, s.idle_closed_timeout);
  mirror(f.dns_lookups, s.dns_lookups);
  mirror(f.dns_cache_hits, s.dns_cache_hits);
  mirror(f.dns_timeouts, s.dns_timeouts);
  f.idle_connections.Set(static_cast<double>(s.idle_connections));
  f.dns_in_flight.Set(static_cast<double>(s.dns_in_flight));
  f.open_circuits.Set(static_cast<double>(s.open_circuits));
  f.requests_in_flight.Set(static_cast<double>(s.requests_in_flight));
  f.outcomes_queued.Set(static_cast<double>(s.outcomes_queued));
  f.listener_subscribed.Set(s.listener_subscribed ? 1 : 0);
  f.clock_offset.Set(s.clock_offset_seconds.value_or(0));
  if (s.sampled) {
    f.outbox_backlog.Set(static_cast<double>(std::min(s.sampled->outbox_rows, kBacklogCap)));
    f.due_deliveries.Set(static_cast<double>(std::min(s.sampled->due_deliveries, kBacklogCap)));
    f.oldest_event_age.Set(s.sampled->oldest_event_age_seconds);
    f.sample_age.Set(s.sampled->seconds_since_sample);
  } else {
    // Never read: an alert on the sample's age fires until the database answers.
    f.sample_age.Set(std::numeric_limits<double>::infinity());
  }
}

std::string metrics::serialize() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

std::uint64_t metrics::attempts(attempt_class c) const {
  return static_cast<std::uint64_t>(families_->attempts[static_cast<std::size_t>(c)]->Value());
}

std::uint64_t metrics::finished(delivery_end end) const {
  return static_cast<std::uint64_t>(families_->finished[static_cast<std::size_t>(end)]->Value());
}

}  // namespace outboxd
