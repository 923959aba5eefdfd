#include "outboxd/admin/policy.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "outboxd/admin/arguments.hpp"
#include "outboxd/admin/output.hpp"
#include "outboxd/admin/session.hpp"
#include "outboxd/admin/webhooks.hpp"
#include "outboxd/log.hpp"
#include "outboxd/retry_policy.hpp"

namespace outboxd::admin {
namespace po = boost::program_options;

namespace {

// Only for a webhook outboxd.subscriptions() knows; a NULL argument keeps what was set. Returns
// whether the webhook is known, then the policy as saved.
constexpr std::string_view kSet = R"sql(
WITH known AS (
    SELECT EXISTS (SELECT 1 FROM outboxd.subscriptions() AS s WHERE s.webhook_id = $1::uuid)
           AS yes
), saved AS (
    INSERT INTO outboxd.webhook_policies AS p
        (webhook_id, retry_schedule_ms, max_attempts, max_in_flight)
    SELECT $1::uuid, string_to_array($2, ',')::bigint[], $3::int, $4::int FROM known WHERE yes
    ON CONFLICT (webhook_id) DO UPDATE
    SET retry_schedule_ms = coalesce(EXCLUDED.retry_schedule_ms, p.retry_schedule_ms),
        max_attempts = coalesce(EXCLUDED.max_attempts, p.max_attempts),
        max_in_flight = coalesce(EXCLUDED.max_in_flight, p.max_in_flight),
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT yes FROM known), (SELECT count(*) FROM saved)
)sql";

constexpr std::string_view kShow =
    "SELECT webhook_id::text, array_to_string(retry_schedule_ms, ','), max_attempts, "
    "max_in_flight, to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
    "FROM outboxd.webhook_policies WHERE $1::uuid IS NULL OR webhook_id = $1::uuid "
    "ORDER BY webhook_id";

constexpr std::string_view kClear =
    "DELETE FROM outboxd.webhook_policies WHERE webhook_id = $1::uuid RETURNING 1";

constexpr std::string_view kUsage =
    "usage: outboxd policy set WEBHOOK_ID [--retry-schedule 5s,1m] [--max-attempts N] "
    "[--max-in-flight N] | show [WEBHOOK_ID] | clear WEBHOOK_ID";

void print_policies(const pg::result& rows, bool json_output) {
  if (json_output) {
    json_writer json;
    json.begin_array();
    for (int r = 0; r < rows.rows(); ++r) {
      json.begin_object()
          .key("webhook_id")
          .string(rows.text(r, 0))
          .key("retry_schedule")
          .string_or_null(format_schedule(rows.text(r, 1)))
          .key("max_attempts")
          .number(rows.text(r, 2))
          .key("max_in_flight")
          .number(rows.text(r, 3))
          .key("updated_at")
          .string(rows.text(r, 4))
          .end_object();
    }
    json.end_array();
    std::cout << json.text() << "\n";
    return;
  }
  const auto or_default = [](std::string text) { return text.empty() ? "default" : text; };
  text_table table({"WEBHOOK", "RETRY SCHEDULE", "MAX ATTEMPTS", "MAX IN FLIGHT", "UPDATED"});
  for (int r = 0; r < rows.rows(); ++r) {
    table.add({std::string(rows.text(r, 0)), or_default(format_schedule(rows.text(r, 1))),
               or_default(std::string(rows.text(r, 2))), or_default(std::string(rows.text(r, 3))),
               std::string(rows.text(r, 4))});
  }
  table.print(std::cout);
}

int policy(const std::vector<std::string>& args) {
  policy_flags flags;
  po::positional_options_description positional;
  positional.add("action", 1).add("webhook", 1);
  const auto config = parse_database_command(args, flags.describe(), positional);
  const bool any_setting =
      !flags.retry_schedule.empty() || !flags.max_attempts.empty() || !flags.max_in_flight.empty();

  if (flags.action == "set") {
    if (flags.webhook.empty()) throw config_error(fmt::format("which webhook? {}", kUsage));
    const auto webhook = require_uuid(flags.webhook, "the webhook id");
    if (!any_setting) {
      throw config_error("policy set needs --retry-schedule, --max-attempts or --max-in-flight");
    }
    // Validated like the daemon's own flags.
    std::optional<std::string> schedule, attempts, in_flight;
    if (!flags.retry_schedule.empty()) {
      std::vector<long long> delays;
      for (const auto delay : parse_retry_schedule(flags.retry_schedule))
        delays.push_back(delay.count());
      schedule = fmt::format("{}", fmt::join(delays, ","));
    }
    if (!flags.max_attempts.empty()) {
      attempts = std::to_string(parse_count(flags.max_attempts, "--max-attempts", 1, 100));
    }
    if (!flags.max_in_flight.empty()) {
      in_flight = std::to_string(parse_count(flags.max_in_flight, "--max-in-flight", 1, 10'000));
    }
    setup_logging(config.log_level, config.log_format);
    session db(config.database, "outboxd policy");
    const auto rows =
        db.query(kSet, {std::string_view(webhook), schedule ? pg::param(*schedule) : std::nullopt,
                        attempts ? pg::param(*attempts) : std::nullopt,
                        in_flight ? pg::param(*in_flight) : std::nullopt});
    if (!rows.boolean(0, 0)) {
      throw command_failed(fmt::format(
          "webhook {} is not known: outboxd.subscriptions() does not list it", webhook));
    }
    const auto saved = db.query(kShow, {std::string_view(webhook)});
    print_policies(saved, flags.json);
    return kExitOk;
  }
  if (any_setting) {
    throw config_error("--retry-schedule, --max-attempts and --max-in-flight go with policy set");
  }
  if (flags.action == "show") {
    std::optional<std::string> webhook;
    if (!flags.webhook.empty()) webhook = require_uuid(flags.webhook, "the webhook id");
    setup_logging(config.log_level, config.log_format);
    session db(config.database, "outboxd policy");
    const auto rows = db.query(kShow, {webhook ? pg::param(*webhook) : std::nullopt});
    if (webhook && rows.rows() == 0 && !flags.json) {
      std::cout << fmt::format("webhook {} has no policy of its own: the daemon's settings apply\n",
                               *webhook);
      return kExitOk;
    }
    print_policies(rows, flags.json);
    return kExitOk;
  }
  if (flags.action == "clear") {
    if (flags.webhook.empty()) throw config_error(fmt::format("which webhook? {}", kUsage));
    const auto webhook = require_uuid(flags.webhook, "the webhook id");
    setup_logging(config.log_level, config.log_format);
    session db(config.database, "outboxd policy");
    const auto rows = db.query(kClear, {std::string_view(webhook)});
    if (rows.rows() == 0) {
      throw command_failed(fmt::format("webhook {} has no policy of its own", webhook));
    }
    std::cout << fmt::format("webhook {}: policy cleared; the daemon's settings apply\n", webhook);
    return kExitOk;
  }
  if (flags.action.empty()) throw config_error(std::string(kUsage));
  throw config_error(fmt::format("unknown policy action '{}'; {}", flags.action, kUsage));
}

}  // namespace

po::options_description policy_flags::describe() {
  po::options_description options("outboxd policy set|show|clear [WEBHOOK_ID]");
  options.add_options()("action", po::value(&action), "set, show or clear (the first argument)")(
      "webhook", po::value(&webhook), "the webhook (a UUID; the second argument)")(
      "retry-schedule", po::value(&retry_schedule),
      "set: delays after the 1st, 2nd, ... failed attempt, e.g. 5s,1m,10m (as run's flag)")(
      "max-attempts", po::value(&max_attempts), "set: attempts before a delivery is dead (1-100)")(
      "max-in-flight", po::value(&max_in_flight),
      "set: this webhook's requests in flight at once, within its endpoint's limit (1-10000)")(
      "json", po::bool_switch(&json), "print a JSON array");
  return options;
}

int run_policy(const std::vector<std::string>& args) { return run_command("policy", policy, args); }

}  // namespace outboxd::admin
