#include "outboxd/backoff.hpp"

#include <algorithm>
#include <random>

namespace outboxd {

backoff::backoff(backoff_options options) : options_(options), current_(options.initial) {}

std::chrono::milliseconds backoff::next() {
  thread_local std::minstd_rand random{std::random_device{}()};
  const auto ceiling = current_.count();
  std::uniform_int_distribution<long long> pick(ceiling / 2, ceiling);
  current_ = std::min(current_ * 2, options_.max);
  return std::chrono::milliseconds(pick(random));
}

void backoff::reset() { current_ = options_.initial; }

}  // namespace outboxd
