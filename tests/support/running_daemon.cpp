#include "support/running_daemon.hpp"

#include <boost/asio/post.hpp>
#include <cstdio>

namespace outboxd::test {
namespace asio = boost::asio;
using namespace std::chrono_literals;

run_config test_config(const std::string& url) {
  run_config config;
  config.database.url = url;
  config.database.statement_timeout = 5s;
  config.poll_interval = 200ms;
  config.reconnect = {.initial = 50ms, .max = 500ms};
  config.shutdown_timeout = 10s;
  auto& delivery = config.delivery;
  delivery.http.addresses = http::address_policy({*http::cidr::parse("127.0.0.0/8")});
  delivery.http.connect_timeout = 1s;
  delivery.http.request_timeout = 2s;
  delivery.engine.poll_interval = config.poll_interval;
  delivery.engine.reconnect = config.reconnect;
  delivery.lease = {.duration = 30s,
                    .request_timeout = delivery.http.request_timeout,
                    .statement_timeout = config.database.statement_timeout};
  delivery.instance_id = "test";
  return config;
}

running_daemon::running_daemon(const run_config& config) : pipeline_(io_.get_executor(), config) {
  pipeline_.start([this](std::string_view, std::exception_ptr error) {
    if (error && !failure_) failure_ = error;
  });
  thread_ = std::thread([this] { io_.run(); });
}

running_daemon::~running_daemon() {
  asio::post(io_, [this] { pipeline_.stop(); });
  thread_.join();
  if (failure_) {
    try {
      std::rethrow_exception(failure_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "daemon loop failed: %s\n", e.what());
      std::abort();
    }
  }
}

}  // namespace outboxd::test
