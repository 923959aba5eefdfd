#include "outboxd/admin/webhooks.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/program_options.hpp>
#include <charconv>
#include <iostream>
#include <map>
#include <set>

#include "outboxd/admin/arguments.hpp"
#include "outboxd/admin/output.hpp"
#include "outboxd/admin/session.hpp"
#include "outboxd/http/client.hpp"
#include "outboxd/log.hpp"

namespace outboxd::admin {
namespace po = boost::program_options;

namespace {

#define OUTBOXD_UTC(column) \
  "to_char(" column " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

constexpr std::string_view kWebhooks =
    "SELECT s.webhook_id::text, min(s.realm_id::text), "
    "string_agg(DISTINCT s.event, ',' ORDER BY s.event), min(s.url), "
    OUTBOXD_UTC("x.disabled_at") ", x.reason, array_to_string(p.retry_schedule_ms, ','), "
    "p.max_attempts, p.max_in_flight "
    "FROM outboxd.subscriptions() AS s "
    "LEFT JOIN outboxd.disabled_webhooks AS x ON x.webhook_id = s.webhook_id "
    "LEFT JOIN outboxd.webhook_policies AS p ON p.webhook_id = s.webhook_id "
    "GROUP BY s.webhook_id, x.disabled_at, x.reason, p.retry_schedule_ms, p.max_attempts, "
    "p.max_in_flight ORDER BY s.webhook_id";

// Disabled webhooks the subscriptions no longer list (deleted in the IAM, or unsubscribed).
constexpr std::string_view kDisabled =
    "SELECT webhook_id::text, " OUTBOXD_UTC("disabled_at") ", reason "
    "FROM outboxd.disabled_webhooks ORDER BY webhook_id";

constexpr std::string_view kCircuits =
    "SELECT endpoint, " OUTBOXD_UTC("opened_at") ", " OUTBOXD_UTC("open_until") ", "
    "open_until > now(), opened_by FROM outboxd.open_circuits";

#undef OUTBOXD_UTC

constexpr std::string_view kEnable =
    "DELETE FROM outboxd.disabled_webhooks WHERE webhook_id = $1::uuid RETURNING reason";

struct circuit {
  std::string opened_at;
  std::string open_until;
  bool open = false;  // still in its cool-down; otherwise waiting for a trial (half-open)
  std::string opened_by;
};

struct webhook_row {
  std::string id, realm, events, url, disabled_at, reason, schedule, max_attempts, max_in_flight;
  std::string endpoint;
  const circuit* breaker = nullptr;
};

std::string circuit_text(const circuit* breaker) {
  if (!breaker) return "closed";
  if (breaker->open) return "open until " + breaker->open_until;
  return "half-open since " + breaker->open_until;
}

int webhooks(const std::vector<std::string>& args) {
  webhooks_flags flags;
  const auto config = parse_database_command(args, flags.describe(), {});
  setup_logging(config.log_level, config.log_format);
  session db(config.database, "outboxd webhooks");
  const auto hooks = db.query(kWebhooks);
  const auto disabled = db.query(kDisabled);
  const auto circuits_rows = db.query(kCircuits);

  std::map<std::string, circuit> circuits;
  for (int r = 0; r < circuits_rows.rows(); ++r) {
    circuits[std::string(circuits_rows.text(r, 0))] = {
        std::string(circuits_rows.text(r, 1)), std::string(circuits_rows.text(r, 2)),
        circuits_rows.boolean(r, 3), std::string(circuits_rows.text(r, 4))};
  }
  std::vector<webhook_row> rows;
  std::set<std::string> listed;
  for (int r = 0; r < hooks.rows(); ++r) {
    webhook_row row{.id = std::string(hooks.text(r, 0)),
                    .realm = std::string(hooks.text(r, 1)),
                    .events = std::string(hooks.text(r, 2)),
                    .url = std::string(hooks.text(r, 3)),
                    .disabled_at = std::string(hooks.text(r, 4)),
                    .reason = std::string(hooks.text(r, 5)),
                    .schedule = format_schedule(hooks.text(r, 6)),
                    .max_attempts = std::string(hooks.text(r, 7)),
                    .max_in_flight = std::string(hooks.text(r, 8))};
    // The daemon's breaker key, from the URL the same way the daemon parses it.
    if (const auto url = http::parse_url(row.url)) {
      row.endpoint = url->key();
      const auto found = circuits.find(row.endpoint);
      if (found != circuits.end()) row.breaker = &found->second;
    }
    listed.insert(row.id);
    rows.push_back(std::move(row));
  }
  for (int r = 0; r < disabled.rows(); ++r) {
    std::string id(disabled.text(r, 0));
    if (listed.contains(id)) continue;
    rows.push_back({.id = std::move(id),
                    .disabled_at = std::string(disabled.text(r, 1)),
                    .reason = std::string(disabled.text(r, 2))});
  }

  if (flags.json) {
    json_writer json;
    json.begin_array();
    for (const auto& row : rows) {
      json.begin_object()
          .key("webhook_id")
          .string(row.id)
          .key("subscribed")
          .boolean(!row.events.empty())
          .key("realm_id")
          .string_or_null(row.realm)
          .key("events")
          .begin_array();
      std::string_view events = row.events;
      while (!events.empty()) {
        const auto comma = events.find(',');
        json.string(events.substr(0, comma));
        if (comma == std::string_view::npos) break;
        events.remove_prefix(comma + 1);
      }
      json.end_array()
          .key("url")
          .string_or_null(row.url)
          .key("endpoint")
          .string_or_null(row.endpoint)
          .key("disabled")
          .boolean(!row.disabled_at.empty())
          .key("disabled_at")
          .string_or_null(row.disabled_at)
          .key("disabled_reason")
          .string_or_null(row.reason)
          .key("circuit")
          .string(!row.breaker        ? "closed"
                  : row.breaker->open ? "open"
                                      : "half-open");
      if (row.breaker) {
        json.key("circuit_opened_at")
            .string(row.breaker->opened_at)
            .key("circuit_open_until")
            .string(row.breaker->open_until)
            .key("circuit_opened_by")
            .string(row.breaker->opened_by);
      }
      json.key("policy")
          .begin_object()
          .key("retry_schedule")
          .string_or_null(row.schedule)
          .key("max_attempts")
          .number(row.max_attempts)
          .key("max_in_flight")
          .number(row.max_in_flight)
          .end_object()
          .end_object();
    }
    json.end_array();
    std::cout << json.text() << "\n";
    return kExitOk;
  }
  text_table table({"WEBHOOK", "EVENTS", "URL", "STATE", "CIRCUIT", "POLICY"});
  for (const auto& row : rows) {
    std::string state = row.disabled_at.empty() ? "enabled" : "disabled " + row.disabled_at;
    if (row.events.empty()) state += " (not subscribed)";
    std::vector<std::string> policy;
    if (!row.schedule.empty()) policy.push_back("retry " + row.schedule);
    if (!row.max_attempts.empty()) policy.push_back("max-attempts " + row.max_attempts);
    if (!row.max_in_flight.empty()) policy.push_back("max-in-flight " + row.max_in_flight);
    table.add({row.id, row.events.empty() ? "-" : row.events, row.url.empty() ? "-" : row.url,
               state, circuit_text(row.breaker),
               policy.empty() ? "default" : fmt::format("{}", fmt::join(policy, ", "))});
  }
  table.print(std::cout);
  return kExitOk;
}

int enable(const std::vector<std::string>& args) {
  enable_flags flags;
  po::positional_options_description positional;
  positional.add("webhook", 1);
  const auto config = parse_database_command(args, flags.describe(), positional);
  if (flags.webhook.empty()) throw config_error("which webhook? usage: outboxd enable WEBHOOK_ID");
  const auto webhook = require_uuid(flags.webhook, "the webhook id");
  setup_logging(config.log_level, config.log_format);
  session db(config.database, "outboxd enable");
  const auto rows = db.query(kEnable, {std::string_view(webhook)});
  if (rows.rows() == 0) throw command_failed(fmt::format("webhook {} is not disabled", webhook));
  std::cout << fmt::format(
      "webhook {} enabled (it was disabled: {}); its cancelled deliveries stay cancelled: "
      "outboxd replay --webhook {} --status cancelled sends them again\n",
      webhook, rows.text(0, 0), webhook);
  return kExitOk;
}

}  // namespace

std::string format_schedule(std::string_view text) {
  std::vector<std::string> delays;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const auto item = text.substr(0, comma);
    long long ms = 0;
    std::from_chars(item.data(), item.data() + item.size(), ms);
    delays.push_back(format_duration(ms));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return fmt::format("{}", fmt::join(delays, ","));
}

po::options_description webhooks_flags::describe() {
  po::options_description options("outboxd webhooks");
  options.add_options()("json", po::bool_switch(&json), "print a JSON array");
  return options;
}

po::options_description enable_flags::describe() {
  po::options_description options("outboxd enable WEBHOOK_ID");
  options.add_options()("webhook", po::value(&webhook),
                        "the webhook to re-enable (a UUID; also the first argument)");
  return options;
}

int run_webhooks(const std::vector<std::string>& args) {
  return run_command("webhooks", webhooks, args);
}

int run_enable(const std::vector<std::string>& args) { return run_command("enable", enable, args); }

}  // namespace outboxd::admin
