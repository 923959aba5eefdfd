#include "chaos/event_ledger.hpp"

#include <fmt/format.h>

#include <charconv>

namespace outboxd::chaos {

void event_ledger::add(const std::vector<entry>& transaction) {
  const std::lock_guard lock(mutex_);
  entries_.insert(entries_.end(), transaction.begin(), transaction.end());
}

std::vector<event_ledger::entry> event_ledger::entries() const {
  const std::lock_guard lock(mutex_);
  return entries_;
}

std::string event_ledger::key(std::uint32_t producer, std::uint32_t sequence) {
  return fmt::format("p{}-{:06d}", producer, sequence);
}

bool event_ledger::parse_key(std::string_view text, std::uint32_t* producer,
                             std::uint32_t* sequence) {
  if (text.size() < 4 || text.front() != 'p') return false;
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) return false;
  const auto* begin = text.data() + 1;
  const auto* middle = text.data() + dash;
  const auto* end = text.data() + text.size();
  const auto first = std::from_chars(begin, middle, *producer);
  const auto second = std::from_chars(middle + 1, end, *sequence);
  return first.ec == std::errc{} && first.ptr == middle && second.ec == std::errc{} &&
         second.ptr == end;
}

}  // namespace outboxd::chaos
