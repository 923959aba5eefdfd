#include "outboxd/pipeline.hpp"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <string>

namespace outboxd {
namespace asio = boost::asio;

namespace {

// The sampler's session: a statement never runs longer than the gap between two samples.
pg::connection_options sampler_database(const run_config& config,
                                        std::shared_ptr<pg::outage_log> outage) {
  auto options = config.database.connection("outboxd sampler", std::move(outage));
  options.statement_timeout =
      std::min(std::max(config.metrics_sample_interval, std::chrono::milliseconds(1000)),
               config.database.statement_timeout);
  return options;
}

// The store's writer must outlive the deliverer: it writes what the last attempts hand over.
// (A plain function, not a capturing lambda: a lambda coroutine's captures die with the lambda.)
// The idle connections go with the deliverer: their sweep's timer would keep the loop running.
asio::awaitable<void> deliver_then_stop_store(deliverer& deliver, delivery_store& store,
                                              http::client& client) {
  std::exception_ptr failure;
  try {
    co_await deliver.run();
  } catch (...) {
    failure = std::current_exception();
  }
  client.close_idle();
  store.stop();  // even after a failure: otherwise the writer would wait forever
  if (failure) std::rethrow_exception(failure);
}

}  // namespace

pipeline::pipeline(asio::any_io_executor executor, const run_config& config)
    : executor_(executor),
      outbox_ready_(executor),
      deliveries_ready_(executor),
      outage_(std::make_shared<pg::outage_log>(
          pg::outage_log_options{.first_interval = config.reconnect.initial})),
      listener_(executor,
                {.database = config.database.connection("outboxd listener", outage_),
                 .reconnect = config.reconnect},
                [this] {
                  // Another replica may be creating deliveries for these events right now.
                  outbox_ready_.notify();
                  deliveries_ready_.notify();
                }),
      dispatcher_(executor,
                  {.database = config.database.connection("outboxd dispatcher", outage_),
                   .batch_size = config.batch_size,
                   .poll_interval = config.poll_interval,
                   .reconnect = config.reconnect,
                   .on_deliveries_created = [this] { deliveries_ready_.notify(); }},
                  outbox_ready_),
      store_(executor, {.database = config.database.connection("outboxd delivery", outage_),
                        .instance_id = config.delivery.instance_id,
                        .lease = config.delivery.lease,
                        .max_expired_attempts = config.delivery.max_expired_attempts,
                        .reconnect = config.reconnect,
                        .on_written = [this] { deliverer_.on_store_written(); },
                        .observer = &metrics_,
                        .on_recorded =
                            [this](const attempt_record& record) {
                              // Off by default: build nothing per outcome then.
                              if (!reporter_.reporting()) return;
                              auto report = report_of(record, store_.clock().now());
                              if (report) reporter_.offer(std::move(*report));
                            },
                        .secret_grace = config.delivery.secret_grace}),
      client_(executor, config.delivery.http),
      policy_(config.delivery.retry),
      deliverer_(executor, config.delivery.engine, store_, client_, policy_, deliveries_ready_),
      retention_(executor, {.database = config.database.connection("outboxd retention", outage_),
                            .retention = config.retention,
                            .interval = config.retention_interval,
                            .reconnect = config.reconnect}),
      reporter_(executor, {.database = config.database.connection("outboxd reporter", outage_),
                           .enabled = config.report_to_iam,
                           .reconnect = config.reconnect}),
      sampler_(executor, {.database = sampler_database(config, outage_),
                          .interval = config.metrics_sample_interval,
                          .cap = metrics::kBacklogCap}) {}

void pipeline::start(on_finished finished) {
  const auto report = [finished](std::string loop) {
    return [finished, loop](std::exception_ptr error) { finished(loop, error); };
  };
  asio::co_spawn(executor_, listener_.run(), report("listener"));
  asio::co_spawn(executor_, dispatcher_.run(), report("dispatcher"));
  asio::co_spawn(executor_, store_.run_writer(), report("delivery store"));
  asio::co_spawn(executor_, deliver_then_stop_store(deliverer_, store_, client_),
                 report("deliverer"));
  asio::co_spawn(executor_, sampler_.run(), report("backlog sampler"));
  asio::co_spawn(executor_, retention_.run(), report("retention"));
  asio::co_spawn(executor_, reporter_.run(), report("reporter"));
}

void pipeline::reconfigure(const run_config& config) {
  policy_.set_options(config.delivery.retry);
  client_.set_address_policy(config.delivery.http.addresses);
  client_.set_endpoint_policy(config.delivery.http.endpoints);
  deliverer_.set_scheduling(config.delivery.engine.scheduling);
}

void pipeline::stop() {
  listener_.stop();
  dispatcher_.stop();
  deliverer_.stop();  // the store stops once the deliverer has handed everything over
  sampler_.stop();
  retention_.stop();
  reporter_.stop();
}

std::string pipeline::scrape() {
  metrics_snapshot s{
      .events_dispatched = dispatcher_.events_dispatched(),
      .deliveries_created = dispatcher_.deliveries_created(),
      .events_set_aside = dispatcher_.events_set_aside(),
      .dispatch_batch_failures = dispatcher_.batch_failures(),
      .wakeups_notify = dispatcher_.wakeups_by_signal(),
      .wakeups_poll = dispatcher_.wakeups_by_poll(),
      .circuit_openings = deliverer_.circuit_openings(),
      .open_circuits = deliverer_.open_circuits(),
      .requests_in_flight = deliverer_.in_flight(),
      .outcomes_abandoned = store_.outcomes_abandoned(),
      .outcomes_fenced_out = store_.outcomes_fenced_out(),
      .outcome_writes_failed = store_.writes_failed(),
      .outcomes_queued = store_.queued_writes(),
      .reconnects_listener = listener_.reconnects(),
      .reconnects_dispatcher = dispatcher_.reconnects(),
      .reconnects_delivery = store_.reconnects(),
      .reconnects_sampler = sampler_.reconnects(),
      .purged_deliveries = retention_.deliveries_purged(),
      .purged_attempts = retention_.attempts_purged(),
      .purged_events = retention_.events_purged(),
      .iam_reports_written = reporter_.reports_written(),
      .iam_reports_failed = reporter_.reports_failed(),
      .listener_subscribed = listener_.listening(),
  };
  const auto http = client_.stats();
  s.idle_connections = http.idle_connections;
  s.idle_closed_endpoint_cap = http.idle_closed_endpoint_cap;
  s.idle_closed_total_cap = http.idle_closed_total_cap;
  s.idle_closed_timeout = http.idle_closed_timeout;
  s.dns_lookups = http.dns.lookups;
  s.dns_cache_hits = http.dns.cache_hits;
  s.dns_timeouts = http.dns.timeouts;
  s.dns_in_flight = http.dns_in_flight;
  if (store_.clock().measured()) {
    s.clock_offset_seconds = std::chrono::duration<double>(store_.clock().offset()).count();
  }
  if (const auto& last = sampler_.last()) {
    s.sampled = metrics_snapshot::backlog{
        .outbox_rows = last->outbox_rows,
        .due_deliveries = last->due_deliveries,
        .oldest_event_age_seconds = std::chrono::duration<double>(last->oldest_event_age).count(),
        .seconds_since_sample =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - last->taken).count()};
  }
  metrics_.update(s);
  return metrics_.serialize();
}

std::string pipeline::not_ready_reason() const {
  if (!listener_.listening()) return "the LISTEN session is not subscribed";
  const auto& last = sampler_.last();
  if (!last) return "PostgreSQL has not answered the backlog sampler yet";
  // Three missed samples: the database is away or too slow to answer a bounded query.
  const auto stale_after = 3 * sampler_.interval() + std::chrono::seconds(1);
  if (std::chrono::steady_clock::now() - last->taken > stale_after) {
    return "PostgreSQL has not answered for more than three sample intervals";
  }
  return {};
}

}  // namespace outboxd
