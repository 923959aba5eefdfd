#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>

#include "outboxd/pg/connection.hpp"

namespace outboxd {

struct backlog_sampler_options {
  pg::connection_options database;  // its own session; the statement timeout bounds each sample
  std::chrono::milliseconds interval{5000};
  std::uint64_t cap = 10'000;  // counts stop here (LIMIT), so a sample costs at most this many rows
};

// One reading of the queues in the database.
struct backlog_sample {
  std::uint64_t outbox_rows = 0;                  // undispatched outbox rows, at most the cap
  std::uint64_t due_deliveries = 0;               // deliveries due now, at most the cap
  std::chrono::microseconds oldest_event_age{0};  // by the database's clock; 0 when empty
  std::chrono::steady_clock::time_point taken;
};

// Reads the gauges that only the database knows, every `interval` on its own session, so a
// scrape never queries PostgreSQL: a scrape storm costs nothing, and a slow database slows no
// scrape. Each query is bounded: counts stop at the cap, the oldest event is found through the
// primary key's order, due deliveries through the partial index the claim uses. Its answers also
// tell readiness that the database is there.
class backlog_sampler {
 public:
  backlog_sampler(boost::asio::any_io_executor executor, backlog_sampler_options options);

  boost::asio::awaitable<void> run();
  void stop();

  const std::optional<backlog_sample>& last() const { return last_; }
  std::chrono::milliseconds interval() const { return options_.interval; }
  std::uint64_t reconnects() const { return connection_.reconnects(); }

 private:
  boost::asio::awaitable<void> sample();

  backlog_sampler_options options_;
  pg::connection connection_;
  boost::asio::steady_timer timer_;
  bool stopping_ = false;
  std::optional<backlog_sample> last_;
};

}  // namespace outboxd
