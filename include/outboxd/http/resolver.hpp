#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace outboxd::http {

struct lookup_result {
  // Empty when the name has addresses. The resolver's own failures: boost::asio::error::timed_out
  // (no answer within the lookup's deadline, or the caller's if earlier) and
  // boost::asio::error::operation_aborted (the resolver stopped before the lookup ran);
  // getaddrinfo's as system_lookup() maps them.
  boost::system::error_code error;
  std::vector<boost::asio::ip::address> addresses;
};

// One blocking name lookup. The default is getaddrinfo (system_lookup); a test injects a slow or
// scripted one to exercise the pool without a DNS server.
using lookup_function = std::function<lookup_result(const std::string& host)>;

// getaddrinfo(host) for TCP, any family, addresses of configured families only (AI_ADDRCONFIG),
// duplicates removed. Its failures map to Boost.Asio's netdb errors (host_not_found,
// host_not_found_try_again, no_data, no_recovery) or errno.
lookup_result system_lookup(const std::string& host);

struct resolver_options {
  std::size_t threads = 4;  // lookups running at once, all names together
  // A lookup not answered this long after it was asked for fails with timed_out;
  // an answer coming later is dropped. getaddrinfo itself cannot be interrupted: its thread stays
  // busy until the system resolver gives up (resolv.conf `timeout` x `attempts`).
  std::chrono::milliseconds timeout{5000};
  // getaddrinfo reports no TTL, so answers are kept a fixed time; 0 keeps none.
  std::chrono::milliseconds cache_ttl{30'000};
  // Failures (no such name, no answer in time) are kept this long, at most cache_ttl: a name
  // that never answers takes one thread once per period, not once per request.
  std::chrono::milliseconds negative_ttl{5000};
  std::size_t max_cached_names = 10'000;
  lookup_function lookup;  // empty: system_lookup
};

// Counters since start (read from any thread).
struct resolver_stats {
  std::uint64_t lookups = 0;     // lookups run on a pool thread
  std::uint64_t cache_hits = 0;  // answered from the cache, no lookup
  std::uint64_t coalesced = 0;   // joined a lookup of the same name already asked for
  std::uint64_t timeouts = 0;    // requests that ended with timed_out
  std::uint64_t failures = 0;    // lookups that ended with another error (not cached answers)
};

// Host names resolved on a bounded pool of threads, so a name whose DNS never answers holds one
// thread, not the daemon's only resolver thread: every other name keeps resolving. At most one
// lookup per name is asked for at a time; further requests for it wait for that lookup's answer.
// Answers, and failures briefly, are cached. Thread-safe; resolve() may be awaited from any
// executor and completes on it.
class resolver {
 public:
  explicit resolver(resolver_options options);
  // Joins the pool: waits for a getaddrinfo still running (bounded by the system resolver's own
  // timeout). Requests still waiting fail with operation_aborted.
  ~resolver();
  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  // The addresses of `host`, or an error: from the cache, from the lookup of `host` in flight,
  // or from a new lookup. Waits until the lookup's deadline or `deadline`, whichever is first,
  // then fails with timed_out. Never throws for a lookup failure. The resolver
  // must outlive the wait.
  boost::asio::awaitable<lookup_result> resolve(std::string host,
                                                std::chrono::steady_clock::time_point deadline);

  resolver_stats stats() const;
  // Lookups asked for and not yet answered (queued or running, late ones included).
  std::size_t in_flight() const;
  const resolver_options& options() const { return options_; }

 private:
  using clock = std::chrono::steady_clock;
  struct waiter;
  struct pending {
    clock::time_point deadline;
    bool started = false;
    std::vector<std::shared_ptr<waiter>> waiters;
  };
  struct cached {
    lookup_result result;
    clock::time_point expires;
  };
  // What a request found under the lock: an answer now, or a lookup to wait for until `until`.
  struct joined {
    bool answered = false;
    lookup_result result;
    clock::time_point until;
  };

  joined join(const std::string& host, const std::shared_ptr<waiter>& self);
  void leave(const std::string& host, const std::shared_ptr<waiter>& self);
  void run_pool_thread();
  // Under the lock.
  void remember(const std::string& host, lookup_result result, clock::time_point now);
  static void deliver(std::vector<std::shared_ptr<waiter>> waiters, const lookup_result& result);

  resolver_options options_;
  lookup_function lookup_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  bool stopping_ = false;
  std::map<std::string, pending, std::less<>> pending_;  // asked for, not answered
  std::deque<std::string> queue_;                        // pending names not yet started
  std::map<std::string, cached, std::less<>> cache_;
  std::atomic<std::uint64_t> lookups_{0}, cache_hits_{0}, coalesced_{0}, timeouts_{0}, failures_{0};
  std::vector<std::thread> threads_;
};

}  // namespace outboxd::http
