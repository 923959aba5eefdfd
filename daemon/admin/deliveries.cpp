#include "outboxd/admin/deliveries.hpp"

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "outboxd/admin/arguments.hpp"
#include "outboxd/admin/output.hpp"
#include "outboxd/admin/session.hpp"
#include "outboxd/admin/time_bound.hpp"
#include "outboxd/log.hpp"

namespace outboxd::admin {
namespace po = boost::program_options;

namespace {

// How much of a receiver's response an attempt shows (the column holds at most
// --max-response-bytes of it).
constexpr std::size_t kResponseExcerpt = 200;

#define OUTBOXD_UTC(column) \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

// Newest first. With --webhook, the index deliveries_webhook (webhook_id, created_at) serves it.
constexpr std::string_view kList =
    "SELECT d.id, d.webhook_id::text, d.event_id, e.event, d.status, d.attempt_count, "
    OUTBOXD_UTC("d.created_at") ", " OUTBOXD_UTC("d.next_attempt_at") ", "
    OUTBOXD_UTC("d.updated_at") ", d.message_id::text "
    "FROM outboxd.deliveries AS d JOIN outboxd.events AS e ON e.id = d.event_id "
    "WHERE ($1::uuid IS NULL OR d.webhook_id = $1::uuid) "
    "  AND ($2::text IS NULL OR d.status = $2) "
    "  AND d.created_at >= coalesce($3::timestamptz, "
    "        now() - $4::bigint * interval '1 millisecond', '-infinity') "
    "  AND d.created_at < coalesce($5::timestamptz, "
    "        now() - $6::bigint * interval '1 millisecond', 'infinity') "
    "ORDER BY d.created_at DESC, d.id DESC LIMIT $7";

constexpr std::string_view kOne =
    "SELECT d.id, d.message_id::text, d.webhook_id::text, d.event_id, e.event, "
    "e.realm_id::text, e.resource_id::text, d.status, d.attempt_count, d.expired_attempts, "
    "d.replayed_attempts, " OUTBOXD_UTC("d.created_at") ", " OUTBOXD_UTC("d.updated_at") ", "
    "CASE WHEN d.status IN ('pending', 'delivering') THEN " OUTBOXD_UTC("d.next_attempt_at")
    " END, " OUTBOXD_UTC("d.leased_until") ", d.leased_by "
    "FROM outboxd.deliveries AS d JOIN outboxd.events AS e ON e.id = d.event_id WHERE d.id = $1";

constexpr std::string_view kAttempts =
    "SELECT attempt_number, " OUTBOXD_UTC("started_at") ", duration_ms, status_code, "
    "error_code, error_detail, left(response_body, 1000), succeeded "
    "FROM outboxd.attempts WHERE delivery_id = $1 ORDER BY attempt_number";

#undef OUTBOXD_UTC

std::string text_of(const pg::result& rows, int row, int column) {
  return std::string(rows.text(row, column));
}

int list(const std::vector<std::string>& args) {
  deliveries_flags flags;
  const auto config = parse_database_command(args, flags.describe(), {});
  std::optional<std::string> webhook;
  if (!flags.webhook.empty()) webhook = require_uuid(flags.webhook, "--webhook");
  if (!flags.status.empty() && !is_delivery_status(flags.status)) {
    throw config_error(
        fmt::format("--status must be pending, delivering, succeeded, dead or cancelled, not '{}'",
                    flags.status));
  }
  std::optional<time_bound> since, until;
  if (!flags.since.empty()) since = parse_time_bound(flags.since, "--since");
  if (!flags.until.empty()) until = parse_time_bound(flags.until, "--until");
  check_range(since, until);
  const auto limit = std::to_string(parse_count(flags.limit, "--limit", 1, 100'000));
  setup_logging(config.log_level, config.log_format);

  session db(config.database, "outboxd deliveries");
  const auto rows = db.query(
      kList, {webhook ? pg::param(*webhook) : std::nullopt,
              flags.status.empty() ? std::nullopt : pg::param(flags.status), timestamp_param(since),
              ago_param(since), timestamp_param(until), ago_param(until), std::string_view(limit)});
  if (flags.json) {
    json_writer json;
    json.begin_array();
    for (int r = 0; r < rows.rows(); ++r) {
      json.begin_object()
          .key("id")
          .number(rows.text(r, 0))
          .key("webhook_id")
          .string(rows.text(r, 1))
          .key("event_id")
          .number(rows.text(r, 2))
          .key("event")
          .string(rows.text(r, 3))
          .key("status")
          .string(rows.text(r, 4))
          .key("attempts")
          .number(rows.text(r, 5))
          .key("created_at")
          .string(rows.text(r, 6))
          .key("next_attempt_at")
          .string(rows.text(r, 7))
          .key("updated_at")
          .string(rows.text(r, 8))
          .key("message_id")
          .string(rows.text(r, 9))
          .end_object();
    }
    json.end_array();
    std::cout << json.text() << "\n";
    return kExitOk;
  }
  text_table table({"ID", "WEBHOOK", "EVENT", "STATUS", "ATTEMPTS", "CREATED", "UPDATED"});
  for (int r = 0; r < rows.rows(); ++r) {
    table.add({text_of(rows, r, 0), text_of(rows, r, 1),
               fmt::format("{} {}", rows.text(r, 2), rows.text(r, 3)), text_of(rows, r, 4),
               text_of(rows, r, 5), text_of(rows, r, 6), text_of(rows, r, 8)});
  }
  table.print(std::cout);
  return kExitOk;
}

int show(const std::vector<std::string>& args) {
  delivery_flags flags;
  po::positional_options_description positional;
  positional.add("id", 1);
  const auto config = parse_database_command(args, flags.describe(), positional);
  if (flags.id.empty()) throw config_error("which delivery? usage: outboxd delivery ID");
  const auto id = require_id(flags.id, "the delivery id");
  setup_logging(config.log_level, config.log_format);

  session db(config.database, "outboxd delivery");
  const auto one = db.query(kOne, {std::string_view(id)});
  if (one.rows() == 0) throw command_failed(fmt::format("no delivery {}", id));
  const auto attempts = db.query(kAttempts, {std::string_view(id)});

  if (flags.json) {
    json_writer json;
    json.begin_object()
        .key("id")
        .number(one.text(0, 0))
        .key("message_id")
        .string(one.text(0, 1))
        .key("webhook_id")
        .string(one.text(0, 2))
        .key("event_id")
        .number(one.text(0, 3))
        .key("event")
        .string(one.text(0, 4))
        .key("realm_id")
        .string(one.text(0, 5))
        .key("resource_id")
        .string(one.text(0, 6))
        .key("status")
        .string(one.text(0, 7))
        .key("attempt_count")
        .number(one.text(0, 8))
        .key("expired_attempts")
        .number(one.text(0, 9))
        .key("replayed_attempts")
        .number(one.text(0, 10))
        .key("created_at")
        .string(one.text(0, 11))
        .key("updated_at")
        .string(one.text(0, 12))
        .key("next_attempt_at")
        .string_or_null(one.text(0, 13))
        .key("leased_until")
        .string_or_null(one.text(0, 14))
        .key("leased_by")
        .string_or_null(one.text(0, 15))
        .key("attempts")
        .begin_array();
    for (int r = 0; r < attempts.rows(); ++r) {
      json.begin_object()
          .key("number")
          .number(attempts.text(r, 0))
          .key("started_at")
          .string(attempts.text(r, 1))
          .key("duration_ms")
          .number(attempts.text(r, 2))
          .key("status_code")
          .number(attempts.text(r, 3))
          .key("error_code")
          .string_or_null(attempts.text(r, 4))
          .key("error_detail")
          .string_or_null(attempts.text(r, 5))
          .key("response_excerpt")
          .string_or_null(excerpt(attempts.text(r, 6), kResponseExcerpt))
          .key("succeeded")
          .boolean(attempts.boolean(r, 7))
          .end_object();
    }
    json.end_array().end_object();
    std::cout << json.text() << "\n";
    return kExitOk;
  }
  print_fields(std::cout,
               {{"delivery", text_of(one, 0, 0)},
                {"message id", text_of(one, 0, 1)},
                {"webhook", text_of(one, 0, 2)},
                {"event", fmt::format("{} {} (realm {}, resource {})", one.text(0, 3),
                                      one.text(0, 4), one.text(0, 5), one.text(0, 6))},
                {"status", text_of(one, 0, 7)},
                {"attempts", fmt::format("{} ({} with an expired lease, {} before the last replay)",
                                         one.text(0, 8), one.text(0, 9), one.text(0, 10))},
                {"created", text_of(one, 0, 11)},
                {"updated", text_of(one, 0, 12)},
                {"next attempt", one.is_null(0, 13) ? "-" : text_of(one, 0, 13)},
                {"leased", one.is_null(0, 14)
                               ? "-"
                               : fmt::format("until {} by {}", one.text(0, 14), one.text(0, 15))}});
  std::cout << "\n";
  text_table table({"#", "STARTED", "DURATION", "STATUS", "ERROR", "RESPONSE"});
  for (int r = 0; r < attempts.rows(); ++r) {
    std::string error = text_of(attempts, r, 4);
    if (!attempts.is_null(r, 5)) error += (error.empty() ? "" : ": ") + text_of(attempts, r, 5);
    table.add({text_of(attempts, r, 0), text_of(attempts, r, 1), format_age(attempts.int64(r, 2)),
               attempts.is_null(r, 3) ? "-" : text_of(attempts, r, 3), excerpt(error, 80),
               excerpt(attempts.text(r, 6), 60)});
  }
  table.print(std::cout);
  return kExitOk;
}

}  // namespace

bool is_delivery_status(const std::string& status) {
  return status == "pending" || status == "delivering" || status == "succeeded" ||
         status == "dead" || status == "cancelled";
}

po::options_description deliveries_flags::describe() {
  po::options_description options("outboxd deliveries");
  options.add_options()("webhook", po::value(&webhook), "only this webhook's (a UUID)")(
      "status", po::value(&status),
      "only these: pending, delivering, succeeded, dead or cancelled")(
      "since", po::value(&since),
      "created at or after: an RFC 3339 timestamp or a duration before now, e.g. 2h")(
      "until", po::value(&until), "created before: the same forms as --since")(
      "limit", po::value(&limit)->default_value(limit), "at most this many, newest first")(
      "json", po::bool_switch(&json), "print a JSON array");
  return options;
}

po::options_description delivery_flags::describe() {
  po::options_description options("outboxd delivery ID");
  options.add_options()("id", po::value(&id), "the delivery's id (also the first argument)")(
      "json", po::bool_switch(&json), "print one JSON object");
  return options;
}

int run_deliveries(const std::vector<std::string>& args) {
  return run_command("deliveries", list, args);
}

int run_delivery(const std::vector<std::string>& args) {
  return run_command("delivery", show, args);
}

}  // namespace outboxd::admin
