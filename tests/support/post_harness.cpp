#include "support/post_harness.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>
#include <future>

namespace outboxd::test {
namespace asio = boost::asio;
using namespace std::chrono_literals;

http::client_options local_client_options() {
  http::client_options options;
  options.connect_timeout = 1000ms;
  options.request_timeout = 2000ms;
  options.addresses = http::address_policy({http::cidr::parse("127.0.0.0/8").value()});
  return options;
}

http::request make_request(std::string_view url, std::string body,
                           std::vector<http_header> headers) {
  const auto parsed = http::parse_url(url);
  EXPECT_TRUE(parsed) << url;
  return http::request{.url = parsed.value_or(http::endpoint_url{}),
                       .headers = std::move(headers),
                       .body = std::make_shared<const std::string>(std::move(body))};
}

post_harness::post_harness(http::client_options options)
    : client_(io_.get_executor(), std::move(options)) {}

http::response post_harness::post(const http::request& req) {
  return post_concurrently({req}).front();
}

std::vector<http::response> post_harness::post_concurrently(
    const std::vector<http::request>& requests) {
  io_.restart();
  std::vector<std::future<http::response>> pending;
  for (const auto& req : requests) {
    pending.push_back(asio::co_spawn(io_, client_.post(req), asio::use_future));
  }
  // Runs the loop until the posts are done, not until it runs out of work: the idle sweep's timer
  // keeps it busy. Each post ends by its request deadline, so this loop is bounded.
  for (auto& f : pending) {
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io_.run_one();
  }
  std::vector<http::response> results;
  for (auto& f : pending) results.push_back(f.get());
  return results;
}

void post_harness::run_for(std::chrono::milliseconds how_long) {
  io_.restart();
  io_.run_for(how_long);
}

}  // namespace outboxd::test
