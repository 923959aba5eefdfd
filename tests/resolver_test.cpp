// The resolver's pool, per-name coalescing, deadlines and cache, with an injected lookup function
// in place of getaddrinfo (dns_test.cpp runs the real one against a DNS server).
#include "outboxd/http/resolver.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <future>
#include <thread>

#include "support/scripted_lookup.hpp"
#include "support/test_database.hpp"

namespace outboxd::http {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using test::eventually;

// An event loop on its own thread: resolutions complete there while the test waits on futures.
class loop {
 public:
  loop() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~loop() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  std::future<lookup_result> resolve(resolver& names, std::string host,
                                     std::chrono::milliseconds wait = 10s) {
    return asio::co_spawn(io_, names.resolve(std::move(host), clock::now() + wait),
                          asio::use_future);
  }
  std::thread::id thread_id() const { return thread_.get_id(); }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_;
  std::thread thread_;
};

bool ready(std::future<lookup_result>& f) { return f.wait_for(0s) == std::future_status::ready; }

TEST(resolver, a_name_that_never_answers_holds_one_thread_and_the_others_keep_resolving) {
  test::scripted_lookup dns;
  loop events;
  resolver names({.threads = 2, .timeout = 10s, .cache_ttl = 0ms, .lookup = dns.function()});

  std::vector<std::future<lookup_result>> stuck;
  for (int i = 0; i < 10; ++i) stuck.push_back(events.resolve(names, "stuck.test"));
  ASSERT_TRUE(eventually([&] { return dns.calls("stuck.test") == 1; }, 2s));

  // 200 other names, one after another on the one free thread, while the stuck one waits.
  const auto start = clock::now();
  for (int i = 0; i < 200; ++i) {
    auto answer = events.resolve(names, "host-" + std::to_string(i) + ".test");
    ASSERT_EQ(answer.wait_for(2s), std::future_status::ready) << i;
    const auto result = answer.get();
    EXPECT_FALSE(result.error) << result.error.message();
    ASSERT_EQ(result.addresses.size(), 1u);
    EXPECT_EQ(result.addresses.front().to_string(), "127.0.0.1");
  }
  const auto healthy = clock::now() - start;
  for (auto& f : stuck) EXPECT_FALSE(ready(f));
  EXPECT_EQ(dns.calls("stuck.test"), 1u) << "the ten requests share one lookup";
  EXPECT_EQ(names.stats().coalesced, 9u);
  EXPECT_EQ(names.in_flight(), 1u);
  std::printf("200 lookups of other names with one name stuck: %.1f ms\n",
              std::chrono::duration<double, std::milli>(healthy).count());

  dns.unstick();
  for (auto& f : stuck) {
    ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
    const auto result = f.get();
    EXPECT_FALSE(result.error);
    ASSERT_EQ(result.addresses.size(), 1u);
    EXPECT_EQ(result.addresses.front().to_string(), "127.0.0.2");
  }
}

TEST(resolver, a_late_lookup_fails_at_its_deadline_and_its_answer_is_dropped) {
  test::scripted_lookup dns;
  loop events;
  resolver names({.threads = 2,
                  .timeout = 200ms,
                  .cache_ttl = 30s,
                  .negative_ttl = 300ms,
                  .lookup = dns.function()});
  const auto start = clock::now();
  std::vector<std::future<lookup_result>> waiting;
  for (int i = 0; i < 3; ++i) waiting.push_back(events.resolve(names, "stuck.test"));
  for (auto& f : waiting) {
    ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
    EXPECT_EQ(f.get().error, asio::error::timed_out);
  }
  const auto waited = clock::now() - start;
  EXPECT_GE(waited, 200ms);
  EXPECT_LT(waited, 1s);

  // The lookup still runs: a new request fails at once rather than taking a second thread.
  auto again = events.resolve(names, "stuck.test");
  ASSERT_EQ(again.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(again.get().error, asio::error::timed_out);
  EXPECT_EQ(dns.calls("stuck.test"), 1u);

  // The answer comes late: dropped, and the name is remembered as not answering.
  dns.unstick();
  ASSERT_TRUE(eventually([&] { return names.in_flight() == 0; }, 2s));
  auto remembered = events.resolve(names, "stuck.test");
  ASSERT_EQ(remembered.wait_for(1s), std::future_status::ready);
  EXPECT_EQ(remembered.get().error, asio::error::timed_out);
  EXPECT_EQ(dns.calls("stuck.test"), 1u);

  // Once the failure expires the name is asked again (and now answers).
  std::this_thread::sleep_for(350ms);  // past negative_ttl
  auto fresh = events.resolve(names, "stuck.test");
  ASSERT_EQ(fresh.wait_for(2s), std::future_status::ready);
  const auto result = fresh.get();
  EXPECT_FALSE(result.error) << result.error.message();
  EXPECT_EQ(dns.calls("stuck.test"), 2u);
  EXPECT_EQ(names.stats().timeouts, 5u);
}

TEST(resolver, caches_answers_for_the_ttl_and_failures_briefly) {
  test::scripted_lookup dns;
  loop events;
  resolver names({.threads = 1,
                  .timeout = 2s,
                  .cache_ttl = 1000ms,
                  .negative_ttl = 100ms,
                  .lookup = dns.function()});
  for (int i = 0; i < 3; ++i) {
    auto found = events.resolve(names, "a.test");
    ASSERT_EQ(found.wait_for(2s), std::future_status::ready);
    EXPECT_FALSE(found.get().error);
    auto missing = events.resolve(names, "missing.test");
    ASSERT_EQ(missing.wait_for(2s), std::future_status::ready);
    EXPECT_EQ(missing.get().error, asio::error::host_not_found);
  }
  EXPECT_EQ(dns.calls("a.test"), 1u);
  EXPECT_EQ(dns.calls("missing.test"), 1u);
  EXPECT_EQ(names.stats().cache_hits, 4u);

  std::this_thread::sleep_for(200ms);  // past the failure's time, within the answer's
  events.resolve(names, "a.test").get();
  events.resolve(names, "missing.test").get();
  EXPECT_EQ(dns.calls("a.test"), 1u);
  EXPECT_EQ(dns.calls("missing.test"), 2u);

  std::this_thread::sleep_for(1000ms);  // past the answer's time
  events.resolve(names, "a.test").get();
  EXPECT_EQ(dns.calls("a.test"), 2u);
  EXPECT_EQ(names.stats().lookups, 4u);
}

TEST(resolver, a_queued_lookup_nobody_waits_for_any_more_takes_no_thread) {
  test::scripted_lookup dns;
  loop events;
  resolver names({.threads = 1, .timeout = 5s, .cache_ttl = 0ms, .lookup = dns.function()});
  auto stuck = events.resolve(names, "stuck.test");
  ASSERT_TRUE(eventually([&] { return dns.calls("stuck.test") == 1; }, 2s));
  // The only thread is taken: this one queues, and its caller gives up at its own deadline.
  auto queued = events.resolve(names, "queued.test", 100ms);
  ASSERT_EQ(queued.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(queued.get().error, asio::error::timed_out);

  dns.unstick();
  ASSERT_EQ(stuck.wait_for(2s), std::future_status::ready);
  EXPECT_FALSE(stuck.get().error);
  ASSERT_TRUE(eventually([&] { return names.in_flight() == 0; }, 2s));
  EXPECT_EQ(dns.calls("queued.test"), 0u);
}

TEST(resolver, completes_on_the_callers_executor_and_fails_waiters_when_stopped) {
  test::scripted_lookup dns;
  loop events;
  std::future<lookup_result> queued;
  {
    resolver names({.threads = 1, .timeout = 5s, .lookup = dns.function()});
    std::promise<std::thread::id> where;
    asio::co_spawn(
        events.io(),
        [&]() -> asio::awaitable<void> {
          co_await names.resolve("a.test", clock::now() + 2s);
          where.set_value(std::this_thread::get_id());
        },
        asio::detached);
    auto thread = where.get_future();
    ASSERT_EQ(thread.wait_for(2s), std::future_status::ready);
    EXPECT_EQ(thread.get(), events.thread_id());

    auto stuck = events.resolve(names, "stuck.test");
    ASSERT_TRUE(eventually([&] { return dns.calls("stuck.test") == 1; }, 2s));
    queued = events.resolve(names, "b.test");
    ASSERT_TRUE(eventually([&] { return names.in_flight() == 2; }, 2s));
    dns.unstick();  // so that the destructor's join ends
  }
  ASSERT_EQ(queued.wait_for(2s), std::future_status::ready);
  const auto error = queued.get().error;
  // b.test either ran before the destructor took the lock or was failed by it.
  EXPECT_TRUE(!error || error == asio::error::operation_aborted) << error.message();
}

}  // namespace
}  // namespace outboxd::http
