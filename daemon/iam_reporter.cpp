#include "outboxd/iam_reporter.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "outboxd/json_text.hpp"
#include "outboxd/log.hpp"

namespace outboxd {
namespace asio = boost::asio;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("iam_reporter");
  return *component;
}

// In webhook order, so that two daemons reporting the same webhooks lock their rows in one order.
constexpr std::string_view kReport = R"sql(
SELECT count(outboxd.report_delivery(r.webhook_id, r.status, r.error,
                                     to_timestamp(r.finished_at_us / 1000000.0)))
FROM (SELECT * FROM jsonb_to_recordset($1::jsonb)
          AS t(webhook_id uuid, status text, error text, finished_at_us bigint)
      ORDER BY webhook_id) AS r
)sql";

constexpr std::string_view kUndefinedFunction = "42883";

}  // namespace

std::optional<delivery_report> report_of(const attempt_record& record,
                                         std::chrono::system_clock::time_point finished_at) {
  delivery_report report;
  switch (record.next) {
    case attempt_record::next_status::succeeded:
      report.status = "succeeded";
      break;
    case attempt_record::next_status::dead:
      report.status = "failed";
      if (record.status_code > 0) {
        report.error = fmt::format("HTTP {}", record.status_code);
        if (!record.error_code.empty()) report.error += ": " + record.error_code;
      } else {
        report.error = record.error_code.empty() ? std::string("failed") : record.error_code;
      }
      // The detail is written for operators and never holds a secret or a header value.
      if (!record.error_detail.empty()) report.error += ": " + record.error_detail;
      break;
    case attempt_record::next_status::pending:
    case attempt_record::next_status::cancelled:
      return std::nullopt;
  }
  report.webhook_id = record.webhook_id;
  report.finished_at_us =
      std::chrono::duration_cast<std::chrono::microseconds>(finished_at.time_since_epoch()).count();
  return report;
}

iam_reporter::iam_reporter(asio::any_io_executor executor, iam_reporter_options options)
    : options_(std::move(options)),
      connection_(executor),
      wake_(executor),
      retry_timer_(executor),
      backoff_(options_.reconnect),
      coalescer_(options_.min_gap),
      reporting_(options_.enabled) {}

void iam_reporter::offer(delivery_report report) {
  if (!reporting_.load() || stopping_) return;
  if (coalescer_.offer(std::move(report), steady_clock::now())) wake_.notify();
}

void iam_reporter::stop() {
  stopping_ = true;
  retry_timer_.cancel();
  wake_.notify();
}

asio::awaitable<void> iam_reporter::run() {
  while (reporting_.load()) {
    if (stopping_) {
      auto rest = coalescer_.take_all();
      if (!rest.empty()) co_await write(std::move(rest));
      break;
    }
    auto due = coalescer_.take_due(steady_clock::now());
    coalesced_.store(coalescer_.coalesced());
    if (!due.empty()) {
      co_await write(std::move(due));
      continue;
    }
    const auto next = coalescer_.next_due();
    auto wait = milliseconds(1000);
    if (next) {
      wait = std::clamp(std::chrono::ceil<milliseconds>(*next - steady_clock::now()),
                        milliseconds(1), wait);
    }
    co_await wake_.wait_for(wait);
  }
  connection_.close();
}

asio::awaitable<void> iam_reporter::write(std::vector<delivery_report> reports) {
  for (std::size_t first = 0; first < reports.size() && reporting_.load();
       first += options_.max_batch) {
    const auto count = std::min(options_.max_batch, reports.size() - first);
    const auto ec = co_await connection_.ensure_connected(options_.database);
    if (ec) {
      // The outage log reports a lost PostgreSQL. These reports are dropped: newer ones follow.
      failed_ += reports.size() - first;
      retry_timer_.expires_after(backoff_.next());
      co_await retry_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      co_return;
    }
    std::string json = "[";
    for (std::size_t i = first; i < first + count; ++i) {
      const auto& r = reports[i];
      if (i > first) json.push_back(',');
      json.append(R"({"webhook_id":)");
      append_json_string(json, r.webhook_id);
      json.append(R"(,"status":)");
      append_json_string(json, r.status);
      json.append(R"(,"error":)");
      if (r.error.empty()) {
        json.append("null");
      } else {
        append_json_string(json, r.error);
      }
      json.append(fmt::format(R"(,"finished_at_us":{}}})", r.finished_at_us));
    }
    json.push_back(']');
    ++statements_;
    const auto out = co_await connection_.execute(kReport, std::string_view(json));
    if (out) {
      written_ += count;
      backoff_.reset();
      last_error_.clear();
      continue;
    }
    failed_ += count;
    if (out.sqlstate == kUndefinedFunction) {
      log().warn(
          "report to IAM: the adapter defines no outboxd.report_delivery() ({}); --report-to-iam "
          "stops until restart",
          out.primary.empty() ? out.message : out.primary);
      reporting_.store(false);
      co_return;
    }
    if (out.message != last_error_ && !pg::is_connection_error(out.error)) {
      log().warn("report to IAM: {} report(s) dropped: {}", count, out.message);
    }
    last_error_ = out.message;
  }
}

}  // namespace outboxd
