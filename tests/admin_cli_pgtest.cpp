// The admin commands as an operator runs them: the real binary against a real database, its
// stdout, stderr and exit code. Rows are written as the daemon would leave them; the replay
// test runs the daemon and a real receiver.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <set>
#include <string>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

struct scene {
  test_database db;
  std::string realm = uuid(1);
  std::string hook_a = uuid(101);
  std::string hook_b = uuid(102);
  receiver a;
  receiver b;

  scene() {
    add_realm(db.sql(), realm, "acme");
    add_webhook(db.sql(), hook_a, realm, a.url("/hook"));
    subscribe(db.sql(), hook_a, "user.created");
    add_webhook(db.sql(), hook_b, realm, b.url("/hook"));
    subscribe(db.sql(), hook_b, "user.created");
    subscribe(db.sql(), hook_b, "user.deleted");
  }

  // The database is named by the environment, as operators are told to.
  command_output cli(std::vector<std::string> args) {
    return run_binary(args, {"OUTBOXD_DATABASE_URL=" + db.url()});
  }

  std::int64_t count(const std::string& query) { return db.sql().scalar(query); }
  std::string text(const std::string& query) {
    return std::string(db.sql().exec(query).text(0, 0));
  }

  // An archived event, `age` old.
  std::int64_t event(std::int64_t id, const std::string& age) {
    db.sql().exec(
        "INSERT INTO outboxd.events (id, realm_id, event, resource_id, data, created_at) "
        "VALUES ($1::bigint, $2::uuid, 'user.created', $2::uuid, '{}', now() - $3::interval)",
        {std::to_string(id), realm, age});
    return id;
  }
  // A delivery as the daemon leaves it; returns its id.
  std::int64_t delivery(std::int64_t event_id, const std::string& webhook,
                        const std::string& status, int attempts, const std::string& age,
                        const std::string& due_in = "0 seconds") {
    return db.sql().scalar(
        "INSERT INTO outboxd.deliveries (event_id, webhook_id, status, attempt_count, "
        "created_at, next_attempt_at) VALUES ($1::bigint, $2::uuid, $3, $4::int, "
        "now() - $5::interval, now() + $6::interval) RETURNING id",
        {std::to_string(event_id), webhook, status, std::to_string(attempts), age, due_in});
  }
  void attempt(std::int64_t delivery_id, int number, int status_code, const std::string& error,
               const std::string& body) {
    db.sql().exec(
        "INSERT INTO outboxd.attempts (delivery_id, attempt_number, started_at, duration_ms, "
        "status_code, error_code, response_body, succeeded) VALUES ($1::bigint, $2::int, "
        "now(), 42, nullif($3, '0')::int, nullif($4, ''), $5, false)",
        {std::to_string(delivery_id), std::to_string(number), std::to_string(status_code), error,
         body});
  }
  // Everything an admin command could change, as one string to compare before and after.
  std::string fingerprint() {
    return text(
        "SELECT concat_ws('|', "
        "(SELECT string_agg(concat_ws(',', id, status, attempt_count, replayed_attempts, "
        "expired_attempts, claim_token, next_attempt_at, updated_at), ';' ORDER BY id) "
        "FROM outboxd.deliveries), "
        "(SELECT count(*) FROM outboxd.attempts), (SELECT count(*) FROM outboxd.outbox), "
        "(SELECT count(*) FROM outboxd.poison_events), "
        "(SELECT string_agg(webhook_id::text, ',') FROM outboxd.disabled_webhooks), "
        "(SELECT string_agg(concat_ws(',', webhook_id, retry_schedule_ms, max_attempts, "
        "max_in_flight), ';') FROM outboxd.webhook_policies))");
  }
};

// Fails the test unless `text` is valid JSON; the parser holds the document.
simdjson::dom::element parse_json(simdjson::dom::parser& parser, const std::string& text) {
  simdjson::dom::element doc;
  const auto error = parser.parse(text).get(doc);
  EXPECT_EQ(error, simdjson::SUCCESS) << "not valid JSON: " << text;
  return doc;
}

std::int64_t json_int(simdjson::dom::element element) {
  std::int64_t value = -1;
  EXPECT_EQ(element.get(value), simdjson::SUCCESS);
  return value;
}

std::string json_string(simdjson::dom::element element) {
  std::string_view value;
  EXPECT_EQ(element.get(value), simdjson::SUCCESS);
  return std::string(value);
}

TEST(admin_cli, status_counts_the_backlog_deliveries_and_what_needs_an_operator) {
  scene s;
  s.db.sql().exec(
      "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data, created_at) VALUES "
      "($1::uuid, 'user.created', $1::uuid, '{}', now() - interval '90 seconds'), "
      "($1::uuid, 'user.created', $1::uuid, '{}', now())",
      {s.realm});
  s.event(1, "1 minute");
  s.delivery(1, s.hook_a, "pending", 0, "1 minute");            // due
  s.delivery(1, s.hook_b, "pending", 1, "1 minute", "1 hour");  // pending, not due
  s.event(2, "1 minute");
  s.delivery(2, s.hook_a, "delivering", 0, "1 minute", "1 minute");  // held under lease
  s.event(3, "1 minute");
  s.delivery(3, s.hook_a, "dead", 10, "1 minute");
  s.delivery(3, s.hook_b, "dead", 10, "1 minute");
  s.event(4, "1 minute");
  s.delivery(4, s.hook_a, "cancelled", 0, "1 minute");
  s.delivery(4, s.hook_b, "succeeded", 1, "1 minute");
  s.db.sql().exec("INSERT INTO outboxd.disabled_webhooks (webhook_id, reason) VALUES ($1, 'x')",
                  {s.hook_a});
  s.db.sql().exec(
      "INSERT INTO outboxd.poison_events (id, realm_id, event, resource_id, created_at, "
      "sqlstate, error_message) VALUES (77, $1::uuid, 'user.created', $1::uuid, now(), "
      "'23505', 'duplicate key')",
      {s.realm});
  s.db.sql().exec(
      "INSERT INTO outboxd.open_circuits (endpoint, open_until, opened_by) VALUES "
      "('http://127.0.0.1:1', now() + interval '1 minute', 'test'), "
      "('http://127.0.0.1:2', now() - interval '1 minute', 'test')");

  const auto json = s.cli({"status", "--json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  simdjson::dom::parser parser;
  const auto doc = parse_json(parser, json.out);
  EXPECT_EQ(json_int(doc["outbox_backlog"]), 2);
  const auto age = json_int(doc["oldest_undispatched_age_ms"]);
  EXPECT_GE(age, 90'000);
  EXPECT_LT(age, 150'000);
  EXPECT_EQ(json_int(doc["deliveries"]["due"]), 1);
  EXPECT_EQ(json_int(doc["deliveries"]["pending"]), 2);
  EXPECT_EQ(json_int(doc["deliveries"]["delivering"]), 1);
  EXPECT_EQ(json_int(doc["deliveries"]["dead"]), 2);
  EXPECT_EQ(json_int(doc["deliveries"]["cancelled"]), 1);
  EXPECT_EQ(json_int(doc["disabled_webhooks"]), 1);
  EXPECT_EQ(json_int(doc["poison_events"]), 1);
  EXPECT_EQ(json_int(doc["open_circuits"]), 1) << "a circuit past its cool-down counted as open";

  const auto human = s.cli({"status"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_NE(human.out.find("outbox backlog:            2 event(s)\n"), std::string::npos)
      << human.out;
  EXPECT_NE(human.out.find("dead deliveries:           2\n"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("poison events:             1\n"), std::string::npos) << human.out;
  EXPECT_NE(human.out.find("oldest undispatched event: 1m "), std::string::npos) << human.out;
}

TEST(admin_cli, deliveries_filters_by_webhook_status_and_time_and_delivery_shows_its_attempts) {
  scene s;
  s.event(1, "3 hours");
  const auto old_dead = s.delivery(1, s.hook_a, "dead", 2, "3 hours");
  s.event(2, "30 minutes");
  const auto recent_dead = s.delivery(2, s.hook_a, "dead", 2, "30 minutes");
  const auto other_hook = s.delivery(2, s.hook_b, "dead", 2, "30 minutes");
  s.event(3, "10 minutes");
  const auto pending = s.delivery(3, s.hook_a, "pending", 0, "10 minutes");

  simdjson::dom::parser parser;
  const auto ids_of = [&parser](const std::string& json) {
    std::vector<std::int64_t> ids;
    simdjson::dom::array rows;
    EXPECT_EQ(parse_json(parser, json).get(rows), simdjson::SUCCESS) << json;
    for (const auto row : rows) ids.push_back(json_int(row["id"]));
    return ids;
  };
  auto out = s.cli({"deliveries", "--json"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(ids_of(out.out),
            (std::vector<std::int64_t>{pending, other_hook, recent_dead, old_dead}));
  out = s.cli({"deliveries", "--json", "--webhook", s.hook_a, "--status", "dead"});
  EXPECT_EQ(ids_of(out.out), (std::vector<std::int64_t>{recent_dead, old_dead}));
  out = s.cli({"deliveries", "--json", "--webhook", s.hook_a, "--since", "2h"});
  EXPECT_EQ(ids_of(out.out), (std::vector<std::int64_t>{pending, recent_dead}));
  out = s.cli({"deliveries", "--json", "--since", "2h", "--until", "20m"});
  EXPECT_EQ(ids_of(out.out), (std::vector<std::int64_t>{other_hook, recent_dead}));
  const auto an_hour_ago = s.text(
      "SELECT to_char((now() - interval '1 hour') AT TIME ZONE 'UTC', "
      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
  out = s.cli({"deliveries", "--json", "--until", an_hour_ago});
  EXPECT_EQ(ids_of(out.out), (std::vector<std::int64_t>{old_dead}));
  out = s.cli({"deliveries", "--json", "--limit", "1"});
  EXPECT_EQ(ids_of(out.out), (std::vector<std::int64_t>{pending}));

  // People get aligned columns.
  out = s.cli({"deliveries", "--webhook", s.hook_b});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  const auto header = out.out.substr(0, out.out.find('\n'));
  const auto row = out.out.substr(header.size() + 1);
  EXPECT_EQ(header.find("WEBHOOK"), row.find(s.hook_b)) << out.out;
  EXPECT_EQ(header.find("STATUS"), row.find("dead")) << out.out;

  // One delivery, with every attempt and a bounded excerpt of a long response.
  s.attempt(recent_dead, 1, 500, "", std::string(5000, 'x'));
  s.attempt(recent_dead, 2, 0, "timeout", "");
  out = s.cli({"delivery", std::to_string(recent_dead), "--json"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  const auto doc = parse_json(parser, out.out);
  EXPECT_EQ(json_string(doc["status"]), "dead");
  EXPECT_EQ(json_string(doc["webhook_id"]), s.hook_a);
  EXPECT_EQ(json_string(doc["message_id"]),
            s.text("SELECT message_id::text FROM outboxd.deliveries WHERE id = " +
                   std::to_string(recent_dead)));
  simdjson::dom::array attempts;
  ASSERT_EQ(doc["attempts"].get(attempts), simdjson::SUCCESS);
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(json_int(attempts.at(0)["number"]), 1);
  EXPECT_EQ(json_int(attempts.at(0)["status_code"]), 500);
  EXPECT_EQ(json_int(attempts.at(0)["duration_ms"]), 42);
  const auto excerpt = json_string(attempts.at(0)["response_excerpt"]);
  EXPECT_GE(excerpt.size(), 100u);
  EXPECT_LE(excerpt.size(), 210u) << "the response excerpt is not bounded";
  EXPECT_EQ(json_int(attempts.at(1)["number"]), 2);
  EXPECT_TRUE(attempts.at(1)["status_code"].is_null());
  EXPECT_EQ(json_string(attempts.at(1)["error_code"]), "timeout");
  EXPECT_FALSE(json_string(attempts.at(1)["started_at"]).empty());

  out = s.cli({"delivery", std::to_string(recent_dead)});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("status:"), std::string::npos);
  EXPECT_NE(out.out.find("timeout"), std::string::npos) << out.out;
  EXPECT_EQ(out.out.find(std::string(300, 'x')), std::string::npos) << "excerpt not bounded";
}

TEST(admin_cli, bad_ids_ranges_and_flags_exit_non_zero_with_a_message_and_change_nothing) {
  scene s;
  s.event(1, "1 hour");
  const auto dead = std::to_string(s.delivery(1, s.hook_a, "dead", 2, "1 hour"));
  const auto pending = std::to_string(s.delivery(1, s.hook_b, "pending", 0, "1 hour", "1 hour"));
  const auto before = s.fingerprint();
  struct bad_case {
    std::vector<std::string> args;
    int exit_code;
    std::string message;
  };
  const std::vector<bad_case> cases{
      {{"status", "--bogus"}, 2, "unrecognised option '--bogus'"},
      {{"deliveries", "--webhook", "nope"}, 2, "--webhook must be a UUID"},
      {{"deliveries", "--status", "lost"}, 2, "--status must be pending, delivering"},
      {{"deliveries", "--since", "yesterday"}, 2, "--since must be an RFC 3339 timestamp"},
      {{"deliveries", "--since", "2026-02-30T10:00:00Z"}, 2, "--since must be an RFC 3339"},
      {{"deliveries", "--until", "90"}, 2, "--until must be an RFC 3339 timestamp"},
      {{"deliveries", "--since", "1h", "--until", "2h"}, 2, "--since must be earlier than"},
      {{"deliveries", "--limit", "0"}, 2, "--limit: must be a whole number from 1"},
      {{"status", "--log-format", "yaml"}, 2, "--log-format yaml: must be text or json"},
      {{"delivery"}, 2, "which delivery?"},
      {{"delivery", "abc"}, 2, "the delivery id must be a whole number"},
      {{"delivery", "999999"}, 1, "no delivery 999999"},
      {{"replay"}, 2, "what to replay?"},
      {{"replay", "-3"}, 2, ""},
      {{"replay", "999999"}, 1, "no delivery 999999"},
      {{"replay", pending}, 1, "is pending: only finished deliveries"},
      {{"replay", dead, "--webhook", s.hook_a}, 2, "not both"},
      {{"replay", "--webhook", s.hook_a}, 2, "needs both --webhook and --status"},
      {{"replay", "--webhook", s.hook_a, "--status", "pending"}, 2, "dead or cancelled"},
      {{"replay", "--webhook", "x", "--status", "dead"}, 2, "--webhook must be a UUID"},
      {{"replay", "--webhook", s.hook_a, "--status", "dead", "--since", "1h", "--until", "3h"},
       2,
       "--since must be earlier than --until"},
      {{"replay", "--poison", "--webhook", s.hook_a}, 2, "--poison takes no --webhook"},
      {{"replay", "--poison", "12"}, 1, "no poison event 12"},
      {{"enable"}, 2, "which webhook?"},
      {{"enable", "00000000-0000-0000-0000-00000000000g"}, 2, "must be a UUID"},
      {{"enable", s.hook_a}, 1, "is not disabled"},
      {{"policy"}, 2, "usage: outboxd policy"},
      {{"policy", "drop", s.hook_a}, 2, "unknown policy action 'drop'"},
      {{"policy", "set", s.hook_a}, 2, "needs --retry-schedule, --max-attempts"},
      {{"policy", "set", "nope", "--max-attempts", "3"}, 2, "must be a UUID"},
      {{"policy", "set", s.hook_a, "--max-attempts", "0"}, 2, "--max-attempts: must be"},
      {{"policy", "set", s.hook_a, "--max-in-flight", "x"}, 2, "--max-in-flight: must be"},
      {{"policy", "set", s.hook_a, "--retry-schedule", "5s,soon"}, 2, "--retry-schedule"},
      {{"policy", "set", uuid(999), "--max-attempts", "3"}, 1, "is not known"},
      {{"policy", "show", s.hook_a, "--max-attempts", "3"}, 2, "go with policy set"},
      {{"policy", "clear", s.hook_a}, 1, "has no policy of its own"},
  };
  for (const auto& c : cases) {
    const auto out = s.cli(c.args);
    std::string shown;
    for (const auto& a : c.args) shown += a + " ";
    EXPECT_EQ(out.exit_code, c.exit_code) << shown << "\n" << out.err;
    EXPECT_NE(out.err.find(c.message), std::string::npos) << shown << "\n" << out.err;
    EXPECT_FALSE(out.err.empty()) << shown;
    EXPECT_TRUE(out.out.empty()) << shown << "\n" << out.out;
  }
  EXPECT_EQ(s.fingerprint(), before);

  // No database at all is a usage error too, before anything is tried.
  const auto nowhere = run_binary({"status"}, {"OUTBOXD_DATABASE_URL="});
  EXPECT_EQ(nowhere.exit_code, 2) << nowhere.err;
}

TEST(admin_cli, replay_of_one_delivery_sends_it_again_under_its_message_id_with_a_fresh_budget) {
  scene s;
  // 500 until the fourth request, then 200. With at most 2 attempts, the delivery is dead after
  // two; replayed, it gets two more, the second of which succeeds.
  s.a.react("/hook",
            {reaction::with_status(500), reaction::with_status(500), reaction::with_status(500)});
  insert_event(s.db.sql(), s.realm, "user.created");
  auto config = test_config(s.db.url());
  config.delivery.retry = {.delays = {50ms}, .max_attempts = 2, .jitter = 0};
  running_daemon daemon(config);
  ASSERT_TRUE(eventually(
      [&] {
        return s.count("SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = '" + s.hook_a +
                       "' AND status = 'dead'") == 1;
      },
      20s, 20ms));
  const auto id =
      s.text("SELECT id::text FROM outboxd.deliveries WHERE webhook_id = '" + s.hook_a + "'");
  ASSERT_EQ(s.a.count("/hook"), 2u);

  // A dry run says what it would do and does nothing.
  const auto before = s.fingerprint();
  const auto dry = s.cli({"replay", id, "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, "would replay 1 delivery (dry run: nothing changed)\n");
  EXPECT_EQ(s.fingerprint(), before);

  const auto replayed = s.cli({"replay", id});
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  EXPECT_EQ(replayed.out, "replayed 1 delivery\n");
  ASSERT_TRUE(s.a.wait_for_count(4, 20s, "/hook"));
  ASSERT_TRUE(eventually(
      [&] {
        return s.text("SELECT status FROM outboxd.deliveries WHERE id = " + id) == "succeeded";
      },
      20s, 20ms));
  const auto requests = s.a.requests("/hook");
  ASSERT_EQ(requests.size(), 4u) << "the replay's budget is not a fresh one";
  std::set<std::string> message_ids;
  for (const auto& r : requests) message_ids.insert(r.headers.at("webhook-id"));
  EXPECT_EQ(message_ids.size(), 1u) << "a replay got a new message id";
  EXPECT_EQ(*message_ids.begin(),
            s.text("SELECT message_id::text FROM outboxd.deliveries WHERE id = " + id));
  EXPECT_EQ(s.text("SELECT string_agg(attempt_number::text, ',' ORDER BY attempt_number) "
                   "FROM outboxd.attempts WHERE delivery_id = " +
                   id),
            "1,2,3,4");
  EXPECT_EQ(s.count("SELECT replayed_attempts FROM outboxd.deliveries WHERE id = " + id), 2);

  // A succeeded delivery is finished too: it may be sent again.
  const auto again = s.cli({"replay", id});
  EXPECT_EQ(again.exit_code, 0) << again.err;
  ASSERT_TRUE(s.a.wait_for_count(5, 20s, "/hook"));
  EXPECT_EQ(s.a.requests("/hook").back().headers.at("webhook-id"), *message_ids.begin());
}

TEST(admin_cli, replay_never_touches_a_delivery_that_is_pending_or_held_by_a_daemon) {
  scene s;
  s.event(1, "1 hour");
  const auto pending = std::to_string(s.delivery(1, s.hook_a, "pending", 1, "1 hour", "1 hour"));
  const auto held = std::to_string(s.delivery(1, s.hook_b, "delivering", 1, "1 hour", "1 minute"));
  s.db.sql().exec("UPDATE outboxd.deliveries SET claim_token = 7, leased_by = 'other' WHERE id = " +
                  held);
  const auto before = s.fingerprint();
  for (const auto& id : {pending, held}) {
    for (const auto& dry : {false, true}) {
      std::vector<std::string> args{"replay", id};
      if (dry) args.push_back("--dry-run");
      const auto out = s.cli(args);
      EXPECT_EQ(out.exit_code, 1) << out.err;
      EXPECT_NE(out.err.find("only finished deliveries"), std::string::npos) << out.err;
    }
  }
  // Nor does a bulk replay, whatever its status filter is.
  const auto bulk = s.cli({"replay", "--webhook", s.hook_b, "--status", "dead"});
  EXPECT_EQ(bulk.exit_code, 0) << bulk.err;
  EXPECT_EQ(bulk.out, "replayed 0 deliveries\n");
  EXPECT_EQ(s.fingerprint(), before);
}

TEST(admin_cli, replay_by_webhook_status_and_time_replays_exactly_those) {
  scene s;
  s.event(1, "3 hours");
  const auto old_dead = s.delivery(1, s.hook_a, "dead", 3, "3 hours");
  s.event(2, "30 minutes");
  const auto dead_1 = s.delivery(2, s.hook_a, "dead", 3, "30 minutes");
  const auto other_hook = s.delivery(2, s.hook_b, "dead", 3, "30 minutes");
  s.event(3, "20 minutes");
  const auto dead_2 = s.delivery(3, s.hook_a, "dead", 4, "20 minutes");
  const auto cancelled = s.delivery(3, s.hook_b, "cancelled", 0, "20 minutes");
  s.db.sql().exec("UPDATE outboxd.deliveries SET expired_attempts = 1 WHERE id = " +
                  std::to_string(dead_2));
  // Finished deliveries keep the due time they had; a replayed one is due now.
  s.db.sql().exec("UPDATE outboxd.deliveries SET next_attempt_at = now() + interval '1 hour'");

  const auto before = s.fingerprint();
  const auto dry =
      s.cli({"replay", "--webhook", s.hook_a, "--status", "dead", "--since", "1h", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, "would replay 2 deliveries (dry run: nothing changed)\n");
  EXPECT_EQ(s.fingerprint(), before);

  const auto out = s.cli({"replay", "--webhook", s.hook_a, "--status", "dead", "--since", "1h"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(out.out, "replayed 2 deliveries\n");
  const auto state = [&s](std::int64_t id) {
    return s.text(
        "SELECT concat_ws('/', status, attempt_count, replayed_attempts, expired_attempts, "
        "next_attempt_at <= now()) FROM outboxd.deliveries WHERE id = " +
        std::to_string(id));
  };
  EXPECT_EQ(state(dead_1), "pending/3/3/0/t");
  EXPECT_EQ(state(dead_2), "pending/4/4/0/t");
  EXPECT_EQ(state(old_dead), "dead/3/0/0/f");
  EXPECT_EQ(state(other_hook), "dead/3/0/0/f");
  EXPECT_EQ(state(cancelled), "cancelled/0/0/0/f");

  const auto cancelled_out = s.cli({"replay", "--webhook", s.hook_b, "--status", "cancelled"});
  ASSERT_EQ(cancelled_out.exit_code, 0) << cancelled_out.err;
  EXPECT_EQ(cancelled_out.out, "replayed 1 delivery\n");
  EXPECT_EQ(state(cancelled), "pending/0/0/0/t");
}

TEST(admin_cli, replay_of_poison_events_moves_them_back_to_the_outbox) {
  scene s;
  s.db.sql().exec(
      "INSERT INTO outboxd.poison_events (id, realm_id, event, resource_id, created_at, "
      "sqlstate, error_message) VALUES "
      "(41, $1::uuid, 'user.created', $1::uuid, now(), '23505', 'duplicate key'), "
      "(42, $1::uuid, 'user.created', $1::uuid, now(), '22P02', 'bad input')",
      {s.realm});
  const auto before = s.fingerprint();
  const auto dry = s.cli({"replay", "--poison", "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_EQ(dry.out, "would replay 2 poison events (dry run: nothing changed)\n");
  EXPECT_EQ(s.fingerprint(), before);

  const auto one = s.cli({"replay", "--poison", "41"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "replayed 1 poison event\n");
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.outbox"), 1);
  EXPECT_EQ(s.count("SELECT id FROM outboxd.poison_events"), 42);
  const auto rest = s.cli({"replay", "--poison"});
  EXPECT_EQ(rest.out, "replayed 1 poison event\n");
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.outbox"), 2);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.poison_events"), 0);
}

TEST(admin_cli, webhooks_shows_subscriptions_disabled_state_and_open_circuits_and_enable_works) {
  scene s;
  s.db.sql().exec(
      "INSERT INTO outboxd.disabled_webhooks (webhook_id, reason) "
      "VALUES ($1, 'the endpoint answered 410 Gone')",
      {s.hook_a});
  // The circuit of b's endpoint (scheme, host and port, as the daemon keys its breaker).
  s.db.sql().exec(
      "INSERT INTO outboxd.open_circuits (endpoint, open_until, opened_by) "
      "VALUES ($1, now() + interval '1 minute', 'test')",
      {"http://127.0.0.1:" + std::to_string(s.b.port())});

  simdjson::dom::parser parser;
  auto out = s.cli({"webhooks", "--json"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  simdjson::dom::array hooks;
  ASSERT_EQ(parse_json(parser, out.out).get(hooks), simdjson::SUCCESS);
  ASSERT_EQ(hooks.size(), 2u);
  const auto a = hooks.at(0);
  const auto b = hooks.at(1);
  EXPECT_EQ(json_string(a["webhook_id"]), s.hook_a);
  EXPECT_EQ(json_string(a["url"]), s.a.url("/hook"));
  EXPECT_EQ(a["disabled"].get_bool().value(), true);
  EXPECT_EQ(json_string(a["disabled_reason"]), "the endpoint answered 410 Gone");
  EXPECT_EQ(json_string(a["circuit"]), "closed");
  EXPECT_EQ(json_string(b["webhook_id"]), s.hook_b);
  EXPECT_EQ(b["disabled"].get_bool().value(), false);
  EXPECT_EQ(json_string(b["circuit"]), "open");
  EXPECT_EQ(json_string(b["endpoint"]), "http://127.0.0.1:" + std::to_string(s.b.port()));
  simdjson::dom::array events;
  ASSERT_EQ(b["events"].get(events), simdjson::SUCCESS);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(json_string(events.at(0)), "user.created");
  EXPECT_EQ(json_string(events.at(1)), "user.deleted");

  out = s.cli({"webhooks"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find("disabled "), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("open until "), std::string::npos) << out.out;

  const auto enabled = s.cli({"enable", s.hook_a});
  ASSERT_EQ(enabled.exit_code, 0) << enabled.err;
  EXPECT_NE(enabled.out.find("webhook " + s.hook_a + " enabled"), std::string::npos);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.disabled_webhooks"), 0);
  const auto twice = s.cli({"enable", s.hook_a});
  EXPECT_EQ(twice.exit_code, 1);
  EXPECT_NE(twice.err.find("is not disabled"), std::string::npos) << twice.err;
}

TEST(admin_cli, policy_set_show_and_clear) {
  scene s;
  auto out =
      s.cli({"policy", "set", s.hook_a, "--retry-schedule", "5s,1m,1500ms", "--max-attempts", "3"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(s.text("SELECT concat_ws('/', retry_schedule_ms, max_attempts, "
                   "coalesce(max_in_flight::text, 'null')) FROM outboxd.webhook_policies"),
            "{5000,60000,1500}/3/null");
  // set changes only what it is given, and a daemon's settings in the environment are not flags
  // of this command.
  out = run_binary({"policy", "set", s.hook_a, "--max-in-flight", "2"},
                   {"OUTBOXD_DATABASE_URL=" + s.db.url(), "OUTBOXD_MAX_ATTEMPTS=7",
                    "OUTBOXD_RETRY_SCHEDULE=1h"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  out = s.cli({"policy", "show", s.hook_a, "--json"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  simdjson::dom::parser parser;
  simdjson::dom::array policies;
  ASSERT_EQ(parse_json(parser, out.out).get(policies), simdjson::SUCCESS);
  ASSERT_EQ(policies.size(), 1u);
  EXPECT_EQ(json_string(policies.at(0)["retry_schedule"]), "5s,1m,1500ms");
  EXPECT_EQ(json_int(policies.at(0)["max_attempts"]), 3);
  EXPECT_EQ(json_int(policies.at(0)["max_in_flight"]), 2);

  out = s.cli({"policy", "show"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_NE(out.out.find(s.hook_a), std::string::npos) << out.out;
  EXPECT_NE(out.out.find("5s,1m,1500ms"), std::string::npos) << out.out;
  out = s.cli({"webhooks"});
  EXPECT_NE(out.out.find("max-in-flight 2"), std::string::npos) << out.out;

  out = s.cli({"policy", "clear", s.hook_a});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.webhook_policies"), 0);
  out = s.cli({"policy", "show", s.hook_a});
  EXPECT_EQ(out.exit_code, 0);
  EXPECT_NE(out.out.find("no policy of its own"), std::string::npos) << out.out;
}

}  // namespace
}  // namespace outboxd::test
