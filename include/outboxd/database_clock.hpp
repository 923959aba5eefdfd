#pragma once

#include <chrono>
#include <optional>

namespace outboxd {

// The database's wall clock, as seen from this daemon. Time is the database's: due times, leases
// and retry gaps are computed by PostgreSQL (now() + delay), so a daemon whose clock is off
// changes when nothing happens. The few wall-clock values the daemon itself must produce (the
// signed webhook-timestamp, the reference for a Retry-After date) come from here: the local clock
// corrected by the offset last measured against PostgreSQL.
//
// Single-threaded: owned by the deliverer's executor.
class database_clock {
 public:
  using wall = std::chrono::system_clock;

  // Above this, the operator is warned: the host's clock needs fixing (NTP).
  static constexpr std::chrono::seconds kWarnAbove{1};
  // While the offset stays above the bound, the warning is repeated this often.
  static constexpr std::chrono::minutes kRewarnEvery{10};

  // One measurement: the local clock just before the query was sent and just after its answer
  // came, and the database's clock_timestamp() in between. The offset is taken at the midpoint,
  // so its error is at most half the round trip.
  void observe(wall::time_point sent, wall::time_point database_time, wall::time_point received);

  // The database's time now (the local clock until the first measurement).
  wall::time_point now() const { return wall::now() + offset_; }
  // database - local: positive when this host's clock is behind.
  wall::duration offset() const { return offset_; }
  bool measured() const { return measured_; }

 private:
  wall::duration offset_{0};
  bool measured_ = false;
  bool warned_ = false;
  std::optional<std::chrono::steady_clock::time_point> last_warning_;
};

}  // namespace outboxd
