#include "outboxd/log_throttle.hpp"

#include <algorithm>

namespace outboxd {

log_throttle::log_throttle(log_throttle_options options) : options_(options) {
  options_.max_keys = std::max<std::size_t>(options_.max_keys, 1);
}

log_throttle::verdict log_throttle::allow(std::string_view key, clock::time_point now) {
  const auto found = entries_.find(key);
  if (found != entries_.end()) {
    auto& e = found->second;
    if (now - e.allowed_at < options_.interval) {
      ++e.suppressed;
      return {};
    }
    const verdict out{.allowed = true, .suppressed = e.suppressed};
    e.allowed_at = now;
    e.suppressed = 0;
    by_age_.splice(by_age_.end(), by_age_, e.age);
    return out;
  }
  // A key whose interval is over and that held nothing back carries no information: forget it.
  while (!by_age_.empty()) {
    const auto oldest = entries_.find(by_age_.front());
    if (now - oldest->second.allowed_at < options_.interval || oldest->second.suppressed > 0) break;
    entries_.erase(oldest);
    by_age_.pop_front();
  }
  while (entries_.size() >= options_.max_keys) evict_oldest();
  auto age = by_age_.insert(by_age_.end(), std::string(key));
  entries_.emplace(*age, entry{.allowed_at = now, .suppressed = 0, .age = age});
  return {.allowed = true, .suppressed = 0};
}

void log_throttle::evict_oldest() {
  // by_age_ is ordered by the last allowed line, so the front is the most expired key, or, when
  // none has expired, the one closest to speaking again.
  const auto oldest = entries_.find(by_age_.front());
  suppressed_evicted_ += oldest->second.suppressed;
  entries_.erase(oldest);
  by_age_.pop_front();
}

}  // namespace outboxd
