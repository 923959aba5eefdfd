#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "outboxd/config.hpp"
#include "outboxd/pipeline.hpp"

namespace outboxd::test {

// A run_config for tests: the given database, loopback destinations allowed, quick polling and
// reconnects, short HTTP deadlines.
run_config test_config(const std::string& url);

// The daemon as `outboxd run` wires it (outboxd::pipeline), on its own event-loop thread, so a
// test can commit rows and watch them travel. Stops gracefully and joins on destruction.
class running_daemon {
 public:
  explicit running_daemon(const run_config& config);
  ~running_daemon();
  running_daemon(const running_daemon&) = delete;
  running_daemon& operator=(const running_daemon&) = delete;

  const dispatcher& dispatch() const { return pipeline_.dispatch(); }
  const pg::listener& listen() const { return pipeline_.listener(); }
  const deliverer& deliver() const { return pipeline_.deliver(); }
  const delivery_store& store() const { return pipeline_.store(); }
  const retention& retain() const { return pipeline_.retain(); }
  const iam_reporter& reporter() const { return pipeline_.reporter(); }

 private:
  boost::asio::io_context io_;
  pipeline pipeline_;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace outboxd::test
