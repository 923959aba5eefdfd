#include "support/scripted_lookup.hpp"

#include <boost/asio/error.hpp>
#include <chrono>

namespace outboxd::test {

scripted_lookup::~scripted_lookup() { unstick(); }

http::lookup_function scripted_lookup::function() {
  return [this](const std::string& host) -> http::lookup_result {
    std::unique_lock lock(mutex_);
    ++calls_[host];
    if (host == "missing.test") return {.error = boost::asio::error::host_not_found};
    if (host == "stuck.test") {
      unstuck_.wait_for(lock, std::chrono::seconds(10), [this] { return !stuck_; });
      return {.addresses = {boost::asio::ip::make_address("127.0.0.2")}};
    }
    return {.addresses = {boost::asio::ip::make_address("127.0.0.1")}};
  };
}

std::size_t scripted_lookup::calls(const std::string& host) {
  std::lock_guard lock(mutex_);
  return calls_[host];
}

void scripted_lookup::unstick() {
  {
    std::lock_guard lock(mutex_);
    stuck_ = false;
  }
  unstuck_.notify_all();
}

}  // namespace outboxd::test
