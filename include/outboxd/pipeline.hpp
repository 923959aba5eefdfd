#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>

#include "outboxd/config.hpp"
#include "outboxd/deliverer.hpp"
#include "outboxd/delivery_store.hpp"
#include "outboxd/dispatcher.hpp"
#include "outboxd/http/client.hpp"
#include "outboxd/pg/listener.hpp"
#include "outboxd/pg/outage_log.hpp"
#include "outboxd/retry_policy.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

// The road, assembled: LISTEN → dispatcher (outbox → deliveries) → deliverer
// (claim → scheduler → message → HTTP) → delivery store. `outboxd run` and the tests build the
// daemon through this one class, so they run the same wiring.
class pipeline {
 public:
  // Called once per loop as it ends; a non-null exception means it failed.
  using on_finished = std::function<void(std::string_view loop, std::exception_ptr error)>;
  static constexpr int kLoops = 4;

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
  http::client& client() { return client_; }

 private:
  boost::asio::any_io_executor executor_;
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
};

}  // namespace outboxd
