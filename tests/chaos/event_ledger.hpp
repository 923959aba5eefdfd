#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace outboxd::chaos {

// The event types producers write, and which of the harness's webhooks subscribe to each.
inline constexpr std::string_view kEventTypes[] = {"user.created", "user.updated", "role.created"};
inline constexpr int kEventTypeCount = 3;

// What the producers know about every event they tried to write: its unique key (carried in the
// event's data) and how its transaction ended as far as the producer could tell. A COMMIT whose
// answer was lost (the server went away during it) is `ambiguous` until the check looks the key
// up in the database: present means it committed.
class event_ledger {
 public:
  enum class fate : std::uint8_t { committed, rolled_back, ambiguous };

  struct entry {
    std::uint32_t producer = 0;
    std::uint32_t sequence = 0;
    std::uint8_t type = 0;  // index into kEventTypes
    fate outcome = fate::committed;
  };

  void add(const std::vector<entry>& transaction);
  std::vector<entry> entries() const;

  // "p3-000042": the key of one event, as written into its data.
  static std::string key(std::uint32_t producer, std::uint32_t sequence);
  // The inverse, for a key read back from the database or a request body; false if malformed.
  static bool parse_key(std::string_view text, std::uint32_t* producer, std::uint32_t* sequence);
  static std::uint64_t packed(std::uint32_t producer, std::uint32_t sequence) {
    return (static_cast<std::uint64_t>(producer) << 32) | sequence;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<entry> entries_;
};

}  // namespace outboxd::chaos
