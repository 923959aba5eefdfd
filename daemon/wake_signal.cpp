#include "outboxd/wake_signal.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace outboxd {
namespace asio = boost::asio;

wake_signal::wake_signal(asio::any_io_executor executor) : timer_(std::move(executor)) {}

void wake_signal::notify() {
  pending_ = true;
  timer_.cancel();
}

asio::awaitable<bool> wake_signal::wait_for(std::chrono::milliseconds timeout) {
  if (!pending_) {
    timer_.expires_after(timeout);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  const bool woken = pending_;
  pending_ = false;
  co_return woken;
}

}  // namespace outboxd
