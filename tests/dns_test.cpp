// The HTTP client's host name resolution against a real DNS server: glibc's getaddrinfo, reading a
// resolv.conf that points at a small DNS server of the test's own (support/dns_server.hpp) that
// answers some names and never answers "stuck.test". The process gets a private mount namespace
// with its own /etc/resolv.conf (support/private_resolv_conf.hpp), so the machine's DNS settings
// are neither used nor touched. This exercises the client the deliverer uses, on one event loop as
// in the daemon; the daemon binary and PostgreSQL are not involved.
//
// Needs root (a mount namespace, port 53): without it the test is skipped, except under CI,
// where it fails.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <cstdlib>
#include <future>

#include "outboxd/http/client.hpp"
#include "support/dns_server.hpp"
#include "support/private_resolv_conf.hpp"
#include "support/receiver.hpp"

namespace outboxd::http {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr int kHealthyNames = 8;
// getaddrinfo gives up on the silent server after this (resolv.conf `timeout`, one attempt).
constexpr auto kSystemResolverTimeout = 2s;

// Set up once per process, before any resolver thread exists. Empty when ready, else why not.
const std::string& private_dns_problem() {
  static const std::string problem = [] {
    const auto address = test::private_loopback_address();
    const auto error = test::use_private_resolv_conf(fmt::format(
        "nameserver {}\noptions timeout:{} attempts:1\n", address.to_string(),
        std::chrono::duration_cast<std::chrono::seconds>(kSystemResolverTimeout).count()));
    return error;
  }();
  return problem;
}

#define REQUIRE_PRIVATE_DNS()                                                            \
  do {                                                                                   \
    if (!private_dns_problem().empty()) {                                                \
      if (std::getenv("CI") != nullptr) FAIL() << private_dns_problem();                 \
      GTEST_SKIP() << "needs root for a private resolv.conf: " << private_dns_problem(); \
    }                                                                                    \
  } while (false)

std::map<std::string, asio::ip::address_v4> healthy_names() {
  std::map<std::string, asio::ip::address_v4> names;
  for (int i = 0; i < kHealthyNames; ++i) {
    names[fmt::format("healthy-{}.test", i)] = asio::ip::make_address_v4("127.0.0.1");
  }
  return names;
}

// Every post opens a new connection and asks DNS again, as the first request to each of many
// endpoints does; loopback only.
client_options resolving_options(std::size_t threads, std::chrono::milliseconds dns_timeout) {
  client_options options;
  options.connect_timeout = 3s;
  options.request_timeout = 4s;
  options.max_idle_per_endpoint = 0;
  options.dns = {.threads = threads, .timeout = dns_timeout, .cache_ttl = 0ms};
  options.addresses = address_policy({cidr::parse("127.0.0.0/8").value()});
  return options;
}

request to(const std::string& host, const test::receiver& server) {
  const auto url = parse_url(fmt::format("http://{}:{}/hook", host, server.port()));
  return {.url = url.value_or(endpoint_url{}),
          .body = std::make_shared<const std::string>(R"({"event":"x"})")};
}

// Runs `io` on this thread until `f` is ready. Bounded: every post ends by its deadlines.
template <class T>
T wait_running(asio::io_context& io, std::future<T>& f) {
  while (f.wait_for(0s) != std::future_status::ready) {
    if (io.stopped()) io.restart();  // it stops whenever it runs out of work
    io.run_one();
  }
  return f.get();
}

struct round_result {
  std::size_t succeeded = 0;
  std::vector<std::string> errors;
  clock::duration took{};
};

// `total` posts to the healthy names, `concurrency` at a time, on `io` (run on this thread).
round_result post_to_healthy(asio::io_context& io, client& http, const test::receiver& server,
                             int total, int concurrency) {
  std::vector<request> requests;
  for (int i = 0; i < total; ++i)
    requests.push_back(to(fmt::format("healthy-{}.test", i % kHealthyNames), server));
  round_result out;
  const auto start = clock::now();
  for (int first = 0; first < total; first += concurrency) {
    std::vector<std::future<response>> batch;
    for (int i = first; i < std::min(total, first + concurrency); ++i) {
      batch.push_back(
          asio::co_spawn(io, http.post(requests[static_cast<std::size_t>(i)]), asio::use_future));
    }
    for (auto& f : batch) {
      const auto res = wait_running(io, f);
      if (res.status == 200) {
        ++out.succeeded;
      } else {
        out.errors.push_back(res.error_code + ": " + res.error_detail);
      }
    }
  }
  out.took = clock::now() - start;
  return out;
}

double per_second(int count, clock::duration took) {
  return count / std::chrono::duration<double>(took).count();
}

TEST(dns, a_name_whose_dns_never_answers_delays_no_other_name) {
  REQUIRE_PRIVATE_DNS();
  test::dns_server dns(test::private_loopback_address(), healthy_names(), {"stuck.test"});
  ASSERT_EQ(dns.error(), "");
  test::receiver server;
  asio::io_context io;
  constexpr int kPosts = 64;
  constexpr int kConcurrency = 8;
  const auto dns_timeout = 1500ms;  // shorter than the system resolver's: its answer comes late
  {
    client http(io.get_executor(), resolving_options(4, dns_timeout));

    const auto baseline = post_to_healthy(io, http, server, kPosts, kConcurrency);
    ASSERT_EQ(baseline.succeeded, static_cast<std::size_t>(kPosts))
        << (baseline.errors.empty() ? "" : baseline.errors.front());
    ASSERT_GE(dns.queries("healthy-0.test"), 1u) << "getaddrinfo did not ask the test's server";

    // Ten webhooks on the stuck name, then the same load as before.
    const auto stuck_request = to("stuck.test", server);
    std::vector<std::future<response>> stuck;
    const auto stuck_start = clock::now();
    for (int i = 0; i < 10; ++i) {
      stuck.push_back(asio::co_spawn(io, http.post(stuck_request), asio::use_future));
    }
    const auto loaded = post_to_healthy(io, http, server, kPosts, kConcurrency);
    EXPECT_EQ(loaded.succeeded, static_cast<std::size_t>(kPosts))
        << (loaded.errors.empty() ? "" : loaded.errors.front());
    // All of that happened while the stuck lookup was pending.
    for (auto& f : stuck) EXPECT_NE(f.wait_for(0s), std::future_status::ready);
    EXPECT_GE(dns.queries("stuck.test"), 1u);

    for (auto& f : stuck) {
      const auto res = wait_running(io, f);
      EXPECT_EQ(res.error_code, "dns_timeout") << res.error_detail;
    }
    const auto stuck_took = clock::now() - stuck_start;
    EXPECT_GE(stuck_took, dns_timeout);
    EXPECT_LT(stuck_took, dns_timeout + 1s);
    // One getaddrinfo (its A and AAAA queries) for the ten requests.
    EXPECT_LE(dns.queries("stuck.test"), 2u);
    EXPECT_EQ(server.count(), static_cast<std::size_t>(2 * kPosts));

    std::printf(
        "healthy names, %d posts %d at a time, each with a DNS lookup and a new connection:\n"
        "  alone:                      %.0f posts/s (%.1f ms)\n"
        "  with 10 posts on a stuck name: %.0f posts/s (%.1f ms)\n",
        kPosts, kConcurrency, per_second(kPosts, baseline.took),
        std::chrono::duration<double, std::milli>(baseline.took).count(),
        per_second(kPosts, loaded.took),
        std::chrono::duration<double, std::milli>(loaded.took).count());
  }  // the client waits for the stuck getaddrinfo to return (kSystemResolverTimeout)
}

// What the test above guards against: with a single resolver thread, as Asio's own resolver has,
// the stuck name holds it and every other name waits behind it until its own deadline.
TEST(dns, with_one_resolver_thread_the_stuck_name_blocks_the_others) {
  REQUIRE_PRIVATE_DNS();
  test::dns_server dns(test::private_loopback_address(), healthy_names(), {"stuck.test"});
  ASSERT_EQ(dns.error(), "");
  test::receiver server;
  asio::io_context io;
  {
    client http(io.get_executor(), resolving_options(1, 500ms));
    const auto stuck_request = to("stuck.test", server);
    auto stuck = asio::co_spawn(io, http.post(stuck_request), asio::use_future);
    const auto blocked = post_to_healthy(io, http, server, kHealthyNames, kHealthyNames);
    EXPECT_EQ(blocked.succeeded, 0u);
    for (const auto& error : blocked.errors) EXPECT_TRUE(error.starts_with("dns_timeout")) << error;
    EXPECT_EQ(wait_running(io, stuck).error_code, "dns_timeout");
    EXPECT_EQ(dns.queries("healthy-0.test"), 0u) << "never reached the server";
  }
}

}  // namespace
}  // namespace outboxd::http
