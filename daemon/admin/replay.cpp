#include "outboxd/admin/replay.hpp"

#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <iostream>

#include "outboxd/admin/arguments.hpp"
#include "outboxd/admin/session.hpp"
#include "outboxd/admin/time_bound.hpp"
#include "outboxd/log.hpp"

namespace outboxd::admin {
namespace po = boost::program_options;

namespace {

// One statement per kind of replay; $dry_run makes it count without changing anything. The
// UPDATE re-checks the status on the row it locks, so a delivery that is pending or delivering
// (a daemon may hold its claim) is never touched. The claim token is not changed (only a claim
// changes it): the delivery's next claim gets a new one, so any write of an older claim stays
// fenced out. replayed_attempts = attempt_count restarts the retry schedule and the attempt
// limit; expired_attempts restarts with it, so old expired leases do not end it as a crash loop.

// $1 delivery id, $2 dry run. Returns the delivery's status (NULL: no such delivery), how many
// were replayed, and whether its webhook is disabled.
constexpr std::string_view kReplayOne = R"sql(
WITH target AS (
    SELECT id, status, webhook_id FROM outboxd.deliveries WHERE id = $1::bigint
), replayed AS (
    UPDATE outboxd.deliveries AS d
    SET status = 'pending', next_attempt_at = now(), replayed_attempts = d.attempt_count,
        expired_attempts = 0, leased_until = NULL, leased_by = NULL, updated_at = now()
    WHERE d.id = $1::bigint AND d.status IN ('succeeded', 'dead', 'cancelled')
      AND NOT $2::boolean
    RETURNING d.id
)
SELECT (SELECT status FROM target), (SELECT count(*) FROM replayed),
       EXISTS (SELECT 1 FROM outboxd.disabled_webhooks AS x
               WHERE x.webhook_id = (SELECT webhook_id FROM target))
)sql";

// $1 webhook, $2 status (dead or cancelled), $3/$4 since, $5/$6 until (time_bound), $7 dry run.
// Returns how many match, how many were replayed, and whether the webhook is disabled.
constexpr std::string_view kReplayMany = R"sql(
WITH target AS (
    SELECT id FROM outboxd.deliveries
    WHERE webhook_id = $1::uuid AND status = $2
      AND created_at >= coalesce($3::timestamptz,
                                 now() - $4::bigint * interval '1 millisecond', '-infinity')
      AND created_at < coalesce($5::timestamptz,
                                now() - $6::bigint * interval '1 millisecond', 'infinity')
), replayed AS (
    UPDATE outboxd.deliveries AS d
    SET status = 'pending', next_attempt_at = now(), replayed_attempts = d.attempt_count,
        expired_attempts = 0, leased_until = NULL, leased_by = NULL, updated_at = now()
    FROM target AS t
    WHERE d.id = t.id AND d.status = $2 AND NOT $7::boolean
    RETURNING d.id
)
SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM replayed),
       EXISTS (SELECT 1 FROM outboxd.disabled_webhooks AS x WHERE x.webhook_id = $1::uuid)
)sql";

// $1 poison event id (NULL: all of them), $2 dry run. Each goes back to the outbox with a new id
// (outboxd.replay_poison_event); the dispatcher fans it out like any other event.
constexpr std::string_view kReplayPoison = R"sql(
WITH target AS (
    SELECT id FROM outboxd.poison_events WHERE $1::bigint IS NULL OR id = $1::bigint ORDER BY id
), replayed AS (
    SELECT outboxd.replay_poison_event(id) FROM target WHERE NOT $2::boolean
)
SELECT (SELECT count(*) FROM target), (SELECT count(*) FROM replayed)
)sql";

std::string_view plural(std::int64_t n, std::string_view one, std::string_view many) {
  return n == 1 ? one : many;
}

void report(std::int64_t matched, std::int64_t replayed, bool dry_run, std::string_view one,
            std::string_view many) {
  if (dry_run) {
    std::cout << fmt::format("would replay {} {} (dry run: nothing changed)\n", matched,
                             plural(matched, one, many));
  } else {
    std::cout << fmt::format("replayed {} {}\n", replayed, plural(replayed, one, many));
  }
}

void warn_disabled(bool disabled, std::string_view webhook) {
  if (!disabled) return;
  std::cerr << fmt::format(
      "outboxd replay: warning: webhook {} is disabled (it answered 410 Gone): its replayed "
      "deliveries are cancelled again unless it is re-enabled with outboxd enable\n",
      webhook);
}

int replay(const std::vector<std::string>& args) {
  replay_flags flags;
  po::positional_options_description positional;
  positional.add("id", 1);
  const auto config = parse_database_command(args, flags.describe(), positional);
  const auto dry_run = flags.dry_run ? std::string_view("true") : std::string_view("false");
  const bool many = !flags.webhook.empty() || !flags.status.empty() || !flags.since.empty() ||
                    !flags.until.empty();

  if (flags.poison) {
    if (many) throw config_error("--poison takes no --webhook, --status, --since or --until");
    std::optional<std::string> id;
    if (!flags.id.empty()) id = require_id(flags.id, "the poison event id");
    setup_logging(config.log_level, config.log_format);
    session db(config.database, "outboxd replay");
    const auto rows =
        db.query(kReplayPoison, {id ? pg::param(*id) : std::nullopt, pg::param(dry_run)});
    const auto matched = rows.int64(0, 0);
    if (id && matched == 0) throw command_failed(fmt::format("no poison event {}", *id));
    report(matched, rows.int64(0, 1), flags.dry_run, "poison event", "poison events");
    return kExitOk;
  }

  if (many) {
    if (!flags.id.empty()) {
      throw config_error("give either a delivery id or --webhook and --status, not both");
    }
    if (flags.webhook.empty() || flags.status.empty()) {
      throw config_error("replaying many deliveries needs both --webhook and --status");
    }
    const auto webhook = require_uuid(flags.webhook, "--webhook");
    if (flags.status != "dead" && flags.status != "cancelled") {
      throw config_error(fmt::format("--status must be dead or cancelled, not '{}'", flags.status));
    }
    std::optional<time_bound> since, until;
    if (!flags.since.empty()) since = parse_time_bound(flags.since, "--since");
    if (!flags.until.empty()) until = parse_time_bound(flags.until, "--until");
    check_range(since, until);
    setup_logging(config.log_level, config.log_format);
    session db(config.database, "outboxd replay");
    const auto rows =
        db.query(kReplayMany,
                 {std::string_view(webhook), std::string_view(flags.status), timestamp_param(since),
                  ago_param(since), timestamp_param(until), ago_param(until), pg::param(dry_run)});
    report(rows.int64(0, 0), rows.int64(0, 1), flags.dry_run, "delivery", "deliveries");
    warn_disabled(rows.boolean(0, 2), webhook);
    return kExitOk;
  }

  if (flags.id.empty()) {
    throw config_error(
        "what to replay? usage: outboxd replay DELIVERY_ID | --webhook ID --status "
        "dead|cancelled [--since T] [--until T] | --poison [EVENT_ID]");
  }
  const auto id = require_id(flags.id, "the delivery id");
  setup_logging(config.log_level, config.log_format);
  session db(config.database, "outboxd replay");
  const auto rows = db.query(kReplayOne, {std::string_view(id), pg::param(dry_run)});
  if (rows.is_null(0, 0)) throw command_failed(fmt::format("no delivery {}", id));
  const auto status = std::string(rows.text(0, 0));
  if (status == "pending" || status == "delivering") {
    throw command_failed(fmt::format(
        "delivery {} is {}: only finished deliveries (succeeded, dead, cancelled) are replayed", id,
        status));
  }
  report(1, rows.int64(0, 1), flags.dry_run, "delivery", "deliveries");
  if (rows.boolean(0, 2)) warn_disabled(true, "of delivery " + id);
  return kExitOk;
}

}  // namespace

po::options_description replay_flags::describe() {
  po::options_description options(
      "outboxd replay DELIVERY_ID | --webhook ID --status S [--since T] [--until T] | "
      "--poison [EVENT_ID]");
  options.add_options()("id", po::value(&id),
                        "the delivery (or, with --poison, the poison event) to replay; also the "
                        "first argument")("webhook", po::value(&webhook),
                                          "replay this webhook's finished deliveries (a UUID)")(
      "status", po::value(&status), "with --webhook: those that are dead or cancelled")(
      "since", po::value(&since),
      "with --webhook: created at or after (RFC 3339 timestamp, or a duration before now: 2h)")(
      "until", po::value(&until), "with --webhook: created before (the same forms)")(
      "poison", po::bool_switch(&poison),
      "move poison events back into the outbox: the one given, or all of them")(
      "dry-run", po::bool_switch(&dry_run), "print how many would be replayed; change nothing");
  return options;
}

int run_replay(const std::vector<std::string>& args) { return run_command("replay", replay, args); }

}  // namespace outboxd::admin
