#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

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

  // `read()` run on the event-loop thread, its result handed back. The accessors above that are
  // not atomic (the deliverer's in_flight(), the store's queued_writes() and write counters) keep
  // state for that thread only: a test reads them through this, never directly. Throws when the
  // loop does not run it within 10 s (it ended).
  template <typename Read>
  std::invoke_result_t<Read&> on_loop(Read read) {
    using result = std::invoke_result_t<Read&>;
    auto answer = std::make_shared<std::promise<result>>();
    auto done = answer->get_future();
    boost::asio::post(io_,
                      [answer, read = std::move(read)]() mutable { answer->set_value(read()); });
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      throw std::runtime_error("running_daemon::on_loop: the event loop did not run the read");
    }
    return done.get();
  }

 private:
  boost::asio::io_context io_;
  pipeline pipeline_;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace outboxd::test
