#include "outboxd/report_coalescer.hpp"

#include <algorithm>

namespace outboxd {
using std::chrono::steady_clock;

report_coalescer::report_coalescer(std::chrono::milliseconds min_gap, std::size_t max_webhooks)
    : min_gap_(min_gap), max_webhooks_(max_webhooks) {}

bool report_coalescer::offer(delivery_report report, steady_clock::time_point now) {
  auto found = webhooks_.find(report.webhook_id);
  if (found == webhooks_.end()) {
    // Webhooks whose gap is over and that wait for nothing are only forgotten by take_due: make
    // room here too before refusing.
    if (webhooks_.size() >= max_webhooks_) take_due(now);
    if (webhooks_.size() >= max_webhooks_) {
      ++dropped_;
      return false;
    }
    found = webhooks_.emplace(report.webhook_id, entry{}).first;
  }
  auto& waiting = found->second.waiting;
  if (waiting) {
    ++coalesced_;
    // Finishes may be offered out of order: the IAM shows the latest.
    if (waiting->finished_at_us > report.finished_at_us) return true;
  }
  waiting = std::move(report);
  return true;
}

std::vector<delivery_report> report_coalescer::take_due(steady_clock::time_point now) {
  std::vector<delivery_report> due;
  for (auto it = webhooks_.begin(); it != webhooks_.end();) {
    auto& [id, state] = *it;
    const bool gap_over = !state.last_sent || now - *state.last_sent >= min_gap_;
    if (!gap_over) {
      ++it;
      continue;
    }
    if (!state.waiting) {
      // Nothing to say and its gap is over: a next report would go at once anyway.
      it = webhooks_.erase(it);
      continue;
    }
    due.push_back(std::move(*state.waiting));
    state.waiting.reset();
    state.last_sent = now;
    ++it;
  }
  return due;
}

std::vector<delivery_report> report_coalescer::take_all() {
  std::vector<delivery_report> all;
  for (auto& [id, state] : webhooks_) {
    if (state.waiting) all.push_back(std::move(*state.waiting));
  }
  webhooks_.clear();
  return all;
}

std::optional<steady_clock::time_point> report_coalescer::next_due() const {
  std::optional<steady_clock::time_point> earliest;
  for (const auto& [id, state] : webhooks_) {
    if (!state.waiting) continue;
    const auto at = state.last_sent ? *state.last_sent + min_gap_ : steady_clock::time_point{};
    if (!earliest || at < *earliest) earliest = at;
  }
  return earliest;
}

std::size_t report_coalescer::waiting() const {
  return static_cast<std::size_t>(
      std::count_if(webhooks_.begin(), webhooks_.end(),
                    [](const auto& e) { return e.second.waiting.has_value(); }));
}

}  // namespace outboxd
