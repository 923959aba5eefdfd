#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace outboxd {

// A webhook's last finished delivery, as the IAM's row shows it.
struct delivery_report {
  std::string webhook_id;
  std::string status;               // "succeeded" or "failed"
  std::string error;                // empty when it succeeded
  std::int64_t finished_at_us = 0;  // Unix microseconds, by the database's clock
};

// Reports at most once per webhook per `min_gap`, and always the latest: a webhook's first
// report goes at once; what finishes within the gap after it waits, each new one replacing the
// one before, and goes when the gap is over. Pure bookkeeping (the caller passes the time), so a
// burst of finishes for one webhook costs two writes, not one per delivery.
class report_coalescer {
 public:
  explicit report_coalescer(std::chrono::milliseconds min_gap = std::chrono::seconds(1),
                            std::size_t max_webhooks = 100'000);

  // False when `max_webhooks` webhooks are already tracked: the report is dropped.
  bool offer(delivery_report report, std::chrono::steady_clock::time_point now);
  // The reports that may go now; their webhooks count as reported at `now`.
  std::vector<delivery_report> take_due(std::chrono::steady_clock::time_point now);
  // Everything waiting, gap or not (at shutdown).
  std::vector<delivery_report> take_all();
  // When the earliest waiting report may go; nullopt when none waits.
  std::optional<std::chrono::steady_clock::time_point> next_due() const;

  std::size_t waiting() const;
  std::size_t tracked() const { return webhooks_.size(); }
  std::uint64_t coalesced() const { return coalesced_; }  // replaced before they went
  std::uint64_t dropped() const { return dropped_; }

 private:
  struct entry {
    std::optional<delivery_report> waiting;
    std::optional<std::chrono::steady_clock::time_point> last_sent;
  };

  std::chrono::milliseconds min_gap_;
  std::size_t max_webhooks_;
  std::unordered_map<std::string, entry> webhooks_;
  std::uint64_t coalesced_ = 0;
  std::uint64_t dropped_ = 0;
};

}  // namespace outboxd
