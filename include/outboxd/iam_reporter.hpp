#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "outboxd/backoff.hpp"
#include "outboxd/delivery_store.hpp"
#include "outboxd/pg/connection.hpp"
#include "outboxd/report_coalescer.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {

struct iam_reporter_options {
  pg::connection_options database;
  bool enabled = false;
  std::chrono::milliseconds min_gap{1000};  // per webhook
  std::size_t max_batch = 500;              // reports per statement
  backoff_options reconnect;
};

// The IAM's view of a finished delivery: what its webhook row shows. nullopt for an outcome that
// is not a finished delivery (a retry is scheduled) or that sent nothing (cancelled).
std::optional<delivery_report> report_of(const attempt_record& record,
                                         std::chrono::system_clock::time_point finished_at);

// Writes each webhook's last finished delivery into the IAM (`outboxd run --report-to-iam`),
// through the adapter's optional function outboxd.report_delivery(webhook_id, status, error,
// finished_at), on a session of its own and coalesced per webhook (report_coalescer). Reporting is
// best effort and apart from delivery bookkeeping: offer() only queues in memory, and a report
// that cannot be written is dropped and counted, never retried ahead of newer ones. When the
// adapter has no such function, it warns once and stops reporting.
class iam_reporter {
 public:
  iam_reporter(boost::asio::any_io_executor executor, iam_reporter_options options);

  void offer(delivery_report report);
  // Until stop(); then writes what waits once and ends. Ends at once when not enabled.
  boost::asio::awaitable<void> run();
  void stop();

  std::uint64_t reports_written() const { return written_.load(); }
  std::uint64_t reports_failed() const { return failed_.load(); }
  std::uint64_t reports_coalesced() const { return coalesced_.load(); }
  std::uint64_t report_statements() const { return statements_.load(); }
  bool reporting() const { return reporting_.load(); }

 private:
  boost::asio::awaitable<void> write(std::vector<delivery_report> reports);

  iam_reporter_options options_;
  pg::connection connection_;
  wake_signal wake_;
  boost::asio::steady_timer retry_timer_;
  backoff backoff_;
  report_coalescer coalescer_;
  bool stopping_ = false;
  std::string last_error_;
  std::atomic<bool> reporting_;
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::uint64_t> coalesced_{0};
  std::atomic<std::uint64_t> statements_{0};
};

}  // namespace outboxd
