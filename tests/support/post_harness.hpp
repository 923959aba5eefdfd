#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "outboxd/http/client.hpp"

namespace outboxd::test {

// Client options for tests: short deadlines, loopback allowed.
http::client_options local_client_options();

// A POST of `body` to `url` (which must parse).
http::request make_request(std::string_view url, std::string body = R"({"event":"x"})",
                           std::vector<http_header> headers = {});

// One http::client on a local io_context; each post runs the context until the post is done.
class post_harness {
 public:
  explicit post_harness(http::client_options options = local_client_options());

  http::response post(const http::request& req);
  // Several posts at once on the one executor.
  std::vector<http::response> post_concurrently(const std::vector<http::request>& requests);

  // Runs the loop for `how_long` (the idle sweep's timer fires meanwhile).
  void run_for(std::chrono::milliseconds how_long);

  http::client& client() { return client_; }

 private:
  boost::asio::io_context io_;
  http::client client_;
};

}  // namespace outboxd::test
