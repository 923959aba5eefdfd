#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "outboxd/dispatcher.hpp"
#include "outboxd/pg/listener.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd::test {

struct daemon_options {
  std::string url;
  std::chrono::milliseconds poll_interval{1000};
  int batch_size = 500;
  backoff_options reconnect{.initial = std::chrono::milliseconds(50),
                            .max = std::chrono::milliseconds(500)};
};

// The listener and a dispatcher wired as `outboxd run` wires them, on their own event-loop
// thread, so a test can commit rows and watch them be dispatched. Stops and joins on destruction.
class running_daemon {
 public:
  explicit running_daemon(const daemon_options& options);
  ~running_daemon();
  running_daemon(const running_daemon&) = delete;
  running_daemon& operator=(const running_daemon&) = delete;

  const dispatcher& dispatch() const { return dispatcher_; }
  const pg::listener& listen() const { return listener_; }

 private:
  boost::asio::io_context io_;
  wake_signal wake_;
  pg::listener listener_;
  dispatcher dispatcher_;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace outboxd::test
