#include "outboxd/pipeline.hpp"

#include <boost/asio/co_spawn.hpp>
#include <string>

namespace outboxd {
namespace asio = boost::asio;

namespace {

// The store's writer must outlive the deliverer: it writes what the last attempts hand over.
// (A plain function, not a capturing lambda: a lambda coroutine's captures die with the lambda.)
asio::awaitable<void> deliver_then_stop_store(deliverer& deliver, delivery_store& store) {
  std::exception_ptr failure;
  try {
    co_await deliver.run();
  } catch (...) {
    failure = std::current_exception();
  }
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
                        .on_written = [this] { deliverer_.on_store_written(); }}),
      client_(executor, config.delivery.http),
      policy_(config.delivery.retry),
      deliverer_(executor, config.delivery.engine, store_, client_, policy_, deliveries_ready_) {}

void pipeline::start(on_finished finished) {
  const auto report = [finished](std::string loop) {
    return [finished, loop](std::exception_ptr error) { finished(loop, error); };
  };
  asio::co_spawn(executor_, listener_.run(), report("listener"));
  asio::co_spawn(executor_, dispatcher_.run(), report("dispatcher"));
  asio::co_spawn(executor_, store_.run_writer(), report("delivery store"));
  asio::co_spawn(executor_, deliver_then_stop_store(deliverer_, store_), report("deliverer"));
}

void pipeline::reconfigure(const run_config& config) {
  policy_.set_options(config.delivery.retry);
  client_.set_address_policy(config.delivery.http.addresses);
  deliverer_.set_scheduling(config.delivery.engine.scheduling);
}

void pipeline::stop() {
  listener_.stop();
  dispatcher_.stop();
  deliverer_.stop();  // the store stops once the deliverer has handed everything over
}

}  // namespace outboxd
