#include "support/running_daemon.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <cstdio>

namespace outboxd::test {
namespace asio = boost::asio;

running_daemon::running_daemon(const daemon_options& options)
    : wake_(io_.get_executor()),
      listener_(io_.get_executor(),
                {.database = {.url = options.url, .application_name = "outboxd listener"},
                 .reconnect = options.reconnect},
                [this] { wake_.notify(); }),
      dispatcher_(io_.get_executor(),
                  {.database = {.url = options.url, .application_name = "outboxd dispatcher"},
                   .batch_size = options.batch_size,
                   .poll_interval = options.poll_interval,
                   .reconnect = options.reconnect},
                  wake_) {
  const auto record = [this](std::exception_ptr error) {
    if (error && !failure_) failure_ = error;
  };
  asio::co_spawn(io_, listener_.run(), record);
  asio::co_spawn(io_, dispatcher_.run(), record);
  thread_ = std::thread([this] { io_.run(); });
}

running_daemon::~running_daemon() {
  asio::post(io_, [this] {
    listener_.stop();
    dispatcher_.stop();
  });
  thread_.join();
  if (failure_) {
    try {
      std::rethrow_exception(failure_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "daemon coroutine failed: %s\n", e.what());
      std::abort();
    }
  }
}

}  // namespace outboxd::test
