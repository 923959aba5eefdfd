#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>

#include "outboxd/backlog_sampler.hpp"
#include "outboxd/config.hpp"
#include "outboxd/deliverer.hpp"
#include "outboxd/delivery_store.hpp"
#include "outboxd/dispatcher.hpp"
#include "outboxd/http/client.hpp"
#include "outboxd/iam_reporter.hpp"
#include "outboxd/metrics.hpp"
#include "outboxd/pg/listener.hpp"
#include "outboxd/pg/outage_log.hpp"
#include "outboxd/retention.hpp"
#include "outboxd/retry_policy.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

// The road, assembled: LISTEN → dispatcher (outbox → deliveries) → deliverer
// (claim → scheduler → message → HTTP) → delivery store; beside them, retention (purges finished
// history) and the IAM reporter (--report-to-iam). `outboxd run` and the tests build the
// daemon through this one class, so they run the same wiring.
class pipeline {
 public:
  // Called once per loop as it ends; a non-null exception means it failed.
  using on_finished = std::function<void(std::string_view loop, std::exception_ptr error)>;
  static constexpr int kLoops = 7;

  pipeline(boost::asio::any_io_executor executor, const run_config& config);

  void start(on_finished finished);
  // Stops claiming; in-flight attempts finish and the store writes everything out, then the
  // loops end.
  void stop();
  // A reload: the settings that can change while running (retry schedule and attempts, limits,
  // breaker, allowed address ranges) take `config`'s values. Call on the pipeline's executor.
  void reconfigure(const run_config& config);

  const pg::listener& listener() const { return listener_; }
  const dispatcher& dispatch() const { return dispatcher_; }
  const deliverer& deliver() const { return deliverer_; }
  const delivery_store& store() const { return store_; }
  const retention& retain() const { return retention_; }
  const iam_reporter& reporter() const { return reporter_; }
  http::client& client() { return client_; }
  const backlog_sampler& sampler() const { return sampler_; }

  // /metrics: the components' counters copied in, then everything in the text format.
  std::string scrape();
  // Empty when the running pipeline is ready for work; otherwise why not, for /readyz.
  std::string not_ready_reason() const;

 private:
  boost::asio::any_io_executor executor_;
  metrics metrics_;
  wake_signal outbox_ready_;
  wake_signal deliveries_ready_;
  // Shared by every session below: one voice when PostgreSQL is away.
  std::shared_ptr<pg::outage_log> outage_;
  pg::listener listener_;
  dispatcher dispatcher_;
  delivery_store store_;
  http::client client_;
  retry_policy policy_;
  deliverer deliverer_;
  retention retention_;
  iam_reporter reporter_;
  backlog_sampler sampler_;
};

}  // namespace outboxd
