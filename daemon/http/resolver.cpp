#include "outboxd/http/resolver.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <exception>

namespace outboxd::http {
namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {

error_code from_getaddrinfo(int status, int saved_errno) {
  switch (status) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
      return asio::error::host_not_found;
    case EAI_AGAIN:  // the DNS server failed or did not answer within resolv.conf's timeout
      return asio::error::host_not_found_try_again;
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
#endif
      return asio::error::no_data;
    case EAI_MEMORY:
      return asio::error::no_memory;
    case EAI_SYSTEM:
      return {saved_errno, boost::system::system_category()};
    default:  // EAI_FAIL and the flags/family errors no valid call makes
      return asio::error::no_recovery;
  }
}

asio::ip::address to_address(const sockaddr* address) {
  if (address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return asio::ip::address_v4(ntohl(v4->sin_addr.s_addr));
  }
  const auto* v6 = reinterpret_cast<const sockaddr_in6*>(address);
  asio::ip::address_v6::bytes_type bytes;
  std::memcpy(bytes.data(), v6->sin6_addr.s6_addr, bytes.size());
  return asio::ip::address_v6(bytes, v6->sin6_scope_id);
}

}  // namespace

lookup_result system_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const int status = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  lookup_result out;
  if (status != 0) {
    out.error = from_getaddrinfo(status, errno);
    return out;
  }
  for (const addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_family != AF_INET && entry->ai_family != AF_INET6) continue;
    const auto address = to_address(entry->ai_addr);
    if (std::find(out.addresses.begin(), out.addresses.end(), address) == out.addresses.end()) {
      out.addresses.push_back(address);
    }
  }
  ::freeaddrinfo(list);
  if (out.addresses.empty()) out.error = asio::error::no_data;
  return out;
}

// One request for a name, on the requester's executor. The pool posts the answer there; the
// requester's timer ends the wait at its deadline.
struct resolver::waiter {
  explicit waiter(const asio::any_io_executor& ex) : executor(ex), wake(ex) {}
  asio::any_io_executor executor;
  asio::steady_timer wake;
  bool done = false;  // set on `executor` when the answer arrived
  lookup_result result;
};

resolver::resolver(resolver_options options)
    : options_(std::move(options)), lookup_(options_.lookup ? options_.lookup : system_lookup) {
  options_.threads = std::max<std::size_t>(1, options_.threads);
  options_.negative_ttl = std::min(options_.negative_ttl, options_.cache_ttl);
  threads_.reserve(options_.threads);
  for (std::size_t i = 0; i < options_.threads; ++i) {
    threads_.emplace_back([this] { run_pool_thread(); });
  }
}

resolver::~resolver() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    // Lookups not started never will be; a running one's thread delivers its answer when
    // getaddrinfo returns, before it sees stopping_.
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.started) {
        ++it;
        continue;
      }
      deliver(std::move(it->second.waiters), {.error = asio::error::operation_aborted});
      it = pending_.erase(it);
    }
    queue_.clear();
  }
  work_.notify_all();
  for (auto& thread : threads_) thread.join();
}

void resolver::deliver(std::vector<std::shared_ptr<waiter>> waiters, const lookup_result& result) {
  for (auto& w : waiters) {
    auto& executor = w->executor;
    asio::post(executor, [w = std::move(w), result] {
      w->done = true;
      w->result = result;
      w->wake.cancel();
    });
  }
}

resolver::joined resolver::join(const std::string& host, const std::shared_ptr<waiter>& self) {
  std::lock_guard lock(mutex_);
  const auto now = clock::now();
  if (const auto hit = cache_.find(host); hit != cache_.end()) {
    if (hit->second.expires > now) {
      cache_hits_.fetch_add(1, std::memory_order_relaxed);
      return {.answered = true, .result = hit->second.result};
    }
    cache_.erase(hit);
  }
  if (const auto asked = pending_.find(host); asked != pending_.end()) {
    // Past its deadline, the lookup still holds a thread (getaddrinfo cannot be cut short); the
    // name gets no second one until it returns.
    if (now >= asked->second.deadline) {
      return {.answered = true, .result = {.error = asio::error::timed_out}};
    }
    asked->second.waiters.push_back(self);
    coalesced_.fetch_add(1, std::memory_order_relaxed);
    return {.until = asked->second.deadline};
  }
  if (stopping_) return {.answered = true, .result = {.error = asio::error::operation_aborted}};
  auto& asked = pending_[host];
  asked.deadline = now + options_.timeout;
  asked.waiters.push_back(self);
  queue_.push_back(host);
  work_.notify_one();
  return {.until = asked.deadline};
}

void resolver::leave(const std::string& host, const std::shared_ptr<waiter>& self) {
  std::lock_guard lock(mutex_);
  const auto asked = pending_.find(host);
  if (asked == pending_.end()) return;
  auto& waiters = asked->second.waiters;
  waiters.erase(std::remove(waiters.begin(), waiters.end(), self), waiters.end());
  // A queued lookup nobody waits for any more is skipped when a thread reaches it.
}

void resolver::remember(const std::string& host, lookup_result result, clock::time_point now) {
  const auto ttl = result.error ? options_.negative_ttl : options_.cache_ttl;
  if (ttl <= std::chrono::milliseconds(0)) return;
  if (cache_.size() >= options_.max_cached_names && !cache_.contains(host)) {
    std::erase_if(cache_, [now](const auto& entry) { return entry.second.expires <= now; });
    if (cache_.size() >= options_.max_cached_names) {
      cache_.erase(std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
        return a.second.expires < b.second.expires;
      }));
    }
  }
  cache_[host] = {.result = std::move(result), .expires = now + ttl};
}

void resolver::run_pool_thread() {
  std::unique_lock lock(mutex_);
  for (;;) {
    work_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    const std::string host = std::move(queue_.front());
    queue_.pop_front();
    auto asked = pending_.find(host);
    if (asked == pending_.end()) continue;
    if (asked->second.waiters.empty() || clock::now() >= asked->second.deadline) {
      // Everyone who asked gave up, or the deadline passed while it queued: not worth a thread.
      // Nothing is cached: the name itself was never asked.
      deliver(std::move(asked->second.waiters), {.error = asio::error::timed_out});
      pending_.erase(asked);
      continue;
    }
    asked->second.started = true;
    lock.unlock();
    lookups_.fetch_add(1, std::memory_order_relaxed);
    lookup_result result;
    try {
      result = lookup_(host);
    } catch (const std::exception&) {  // std::bad_alloc: reported as a failed lookup
      result = {.error = asio::error::no_recovery};
    }
    lock.lock();
    asked = pending_.find(host);  // still there: only the thread that started it removes it
    const auto now = clock::now();
    if (now > asked->second.deadline) {
      // Too late for everyone who asked: dropped, and the name is remembered as not answering.
      result = {.error = asio::error::timed_out};
    } else if (result.error) {
      failures_.fetch_add(1, std::memory_order_relaxed);
    }
    remember(host, result, now);
    deliver(std::move(asked->second.waiters), result);
    pending_.erase(asked);
  }
}

asio::awaitable<lookup_result> resolver::resolve(std::string host, clock::time_point deadline) {
  const auto executor = co_await asio::this_coro::executor;
  auto self = std::make_shared<waiter>(executor);
  auto found = join(host, self);
  if (!found.answered) {
    self->wake.expires_at(std::min(deadline, found.until));
    const auto [ec] = co_await self->wake.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;  // cancelled by the answer, or expired: `done` tells
    if (self->done) {
      found.result = std::move(self->result);
    } else {
      leave(host, self);
      found.result = {.error = asio::error::timed_out};
    }
  }
  if (found.result.error == asio::error::timed_out) {
    timeouts_.fetch_add(1, std::memory_order_relaxed);
  }
  co_return found.result;
}

resolver_stats resolver::stats() const {
  return {.lookups = lookups_.load(std::memory_order_relaxed),
          .cache_hits = cache_hits_.load(std::memory_order_relaxed),
          .coalesced = coalesced_.load(std::memory_order_relaxed),
          .timeouts = timeouts_.load(std::memory_order_relaxed),
          .failures = failures_.load(std::memory_order_relaxed)};
}

std::size_t resolver::in_flight() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

}  // namespace outboxd::http
