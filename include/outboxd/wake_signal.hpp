#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>

namespace outboxd {

// A level-triggered "there may be work" flag that one coroutine sleeps on with a timeout.
// notify() before the wait is not lost: the next wait returns at once. Use on one executor.
class wake_signal {
 public:
  explicit wake_signal(boost::asio::any_io_executor executor);

  void notify();

  // Returns true when woken by notify(), false when the timeout passed first.
  boost::asio::awaitable<bool> wait_for(std::chrono::milliseconds timeout);

 private:
  boost::asio::steady_timer timer_;
  bool pending_ = false;
};

}  // namespace outboxd
