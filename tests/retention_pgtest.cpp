// Retention: finished history goes after --retention, unfinished work never, and under a steady
// load the tables stop growing.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <thread>

#include "outboxd/retention.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

// One purge round of the component alone, on its own event loop.
retention_round purge_once(const std::string& url, std::chrono::milliseconds keep,
                           int batch_rows = 500) {
  asio::io_context io;
  retention purger(io.get_executor(),
                   {.database = {.url = url, .application_name = "outboxd test retention"},
                    .retention = keep,
                    .batch_rows = batch_rows,
                    .pause = 1ms});
  auto done = asio::co_spawn(io, purger.purge_round(), asio::use_future);
  io.run();
  auto round = done.get();
  EXPECT_FALSE(round.error) << round.message;
  EXPECT_EQ(purger.deliveries_purged(), round.deliveries);
  EXPECT_EQ(purger.attempts_purged(), round.attempts);
  EXPECT_EQ(purger.events_purged(), round.events);
  return round;
}

// History written straight into outboxd's tables, with the ages the test needs.
struct history {
  sql_session& sql;

  // An event dispatched `age` ago (PostgreSQL interval text).
  std::int64_t event(int id, const std::string& age) {
    sql.exec(
        "INSERT INTO outboxd.events (id, realm_id, event, resource_id, data, created_at, "
        "dispatched_at) VALUES ($1::bigint, $2, 'user.created', $2, '{}', "
        "now() - $3::interval, now() - $3::interval)",
        {std::to_string(id), uuid(1), age});
    return id;
  }
  // A delivery last changed `age` ago, with one attempt.
  std::int64_t delivery(std::int64_t event_id, int webhook, const std::string& status,
                        const std::string& age) {
    const auto id = sql.scalar(
        "INSERT INTO outboxd.deliveries (event_id, webhook_id, status, attempt_count, "
        "next_attempt_at, leased_until, created_at, updated_at) "
        "VALUES ($1::bigint, $2, $3, 1, "
        "        CASE WHEN $3 = 'pending' THEN now() + interval '1 day' ELSE now() END, "
        "        CASE WHEN $3 = 'delivering' THEN now() + interval '1 minute' END, "
        "        now() - $4::interval, now() - $4::interval) RETURNING id",
        {std::to_string(event_id), uuid(100 + webhook), status, age});
    sql.exec(
        "INSERT INTO outboxd.attempts (delivery_id, attempt_number, started_at, duration_ms, "
        "status_code, succeeded) VALUES ($1::bigint, 1, now() - $2::interval, 5, 200, true)",
        {std::to_string(id), age});
    return id;
  }
  bool has(const std::string& table, std::int64_t id) {
    return sql.scalar("SELECT count(*) FROM outboxd." + table + " WHERE id = $1::bigint",
                      {std::to_string(id)}) == 1;
  }
  std::int64_t attempts_of(std::int64_t delivery_id) {
    return sql.scalar("SELECT count(*) FROM outboxd.attempts WHERE delivery_id = $1::bigint",
                      {std::to_string(delivery_id)});
  }
};

// Every kind of row, an hour old or a second old, for a retention of one minute.
struct aged_rows {
  std::int64_t pending_event, pending, finished_beside_pending;
  std::int64_t delivering_event, delivering;
  std::int64_t finished_event, succeeded, dead, cancelled;
  std::int64_t recently_finished_event, recently_finished;
  std::int64_t lonely_old_event, lonely_new_event;

  explicit aged_rows(history& h) {
    pending_event = h.event(1, "1 hour");
    pending = h.delivery(pending_event, 1, "pending", "1 hour");
    finished_beside_pending = h.delivery(pending_event, 2, "succeeded", "1 hour");
    delivering_event = h.event(2, "1 hour");
    delivering = h.delivery(delivering_event, 1, "delivering", "1 hour");
    finished_event = h.event(3, "1 hour");
    succeeded = h.delivery(finished_event, 1, "succeeded", "1 hour");
    dead = h.delivery(finished_event, 2, "dead", "1 hour");
    cancelled = h.delivery(finished_event, 3, "cancelled", "1 hour");
    // Dispatched long ago, finished a second ago (a retry that took long).
    recently_finished_event = h.event(4, "1 hour");
    recently_finished = h.delivery(recently_finished_event, 1, "dead", "1 second");
    lonely_old_event = h.event(5, "1 hour");  // no subscriber: no delivery at all
    lonely_new_event = h.event(6, "1 second");
    h.sql.exec(
        "INSERT INTO outboxd.poison_events (id, realm_id, event, resource_id, created_at, "
        "failed_at, sqlstate, error_message) "
        "VALUES (7, $1, 'user.created', $1, now() - interval '1 day', now() - interval '1 day', "
        "'22P02', 'bad')",
        {uuid(1)});
  }
};

TEST(retention, unfinished_deliveries_and_their_events_stay_while_old_finished_ones_go) {
  test_database db;
  history h{db.sql()};
  const aged_rows rows(h);

  // Two rows per statement, so the round walks its cursor over several batches.
  const auto round = purge_once(db.url(), 1min, 2);

  EXPECT_TRUE(h.has("deliveries", rows.pending));
  EXPECT_EQ(h.attempts_of(rows.pending), 1);
  EXPECT_TRUE(h.has("events", rows.pending_event));
  EXPECT_TRUE(h.has("deliveries", rows.delivering));
  EXPECT_EQ(h.attempts_of(rows.delivering), 1);
  EXPECT_TRUE(h.has("events", rows.delivering_event));
  // A finished delivery goes even beside an unfinished one; its event stays for the other.
  EXPECT_FALSE(h.has("deliveries", rows.finished_beside_pending));
  EXPECT_EQ(h.attempts_of(rows.finished_beside_pending), 0);

  for (const auto id : {rows.succeeded, rows.dead, rows.cancelled}) {
    EXPECT_FALSE(h.has("deliveries", id)) << id;
    EXPECT_EQ(h.attempts_of(id), 0) << id;
  }
  EXPECT_FALSE(h.has("events", rows.finished_event));

  EXPECT_TRUE(h.has("deliveries", rows.recently_finished));
  EXPECT_TRUE(h.has("events", rows.recently_finished_event));
  EXPECT_FALSE(h.has("events", rows.lonely_old_event));
  EXPECT_TRUE(h.has("events", rows.lonely_new_event));
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.poison_events"), 1);

  EXPECT_EQ(round.deliveries, 4u);
  EXPECT_EQ(round.attempts, 4u);
  EXPECT_EQ(round.events, 2u);

  // A second round finds nothing more.
  const auto again = purge_once(db.url(), 1min, 2);
  EXPECT_EQ(again.deliveries + again.attempts + again.events, 0u);
}

// In a running daemon: deliveries that wait for a retry long after the retention stay, with their
// events and attempts, while the ones that succeeded beside them go.
TEST(retention, a_running_daemon_keeps_deliveries_that_wait_for_a_retry) {
  test_database db;
  receiver hooks;
  add_realm(db.sql(), uuid(1), "acme");
  add_webhook(db.sql(), uuid(101), uuid(1), hooks.url("/failing"));
  subscribe(db.sql(), uuid(101), "user.created");
  add_webhook(db.sql(), uuid(102), uuid(1), hooks.url("/ok"));
  subscribe(db.sql(), uuid(102), "user.created");
  hooks.react("/failing", {}, reaction::with_status(500));
  auto config = test_config(db.url());
  config.retention = 500ms;
  config.retention_interval = 100ms;
  config.delivery.retry = {.delays = {1h}, .max_attempts = 5, .jitter = 0};
  running_daemon daemon(config);
  for (int i = 0; i < 10; ++i) insert_event(db.sql(), uuid(1), "user.created");

  // The succeeded ones go once they are older than the retention...
  ASSERT_TRUE(eventually([&] { return daemon.retain().deliveries_purged() == 10; }, 15s));
  // ...while the pending ones, unchanged for twice the retention (a circuit that opens on the
  // failing endpoint defers them, which changes them), stay through several more rounds.
  ASSERT_TRUE(eventually(
      [&] {
        return db.sql().scalar(
                   "SELECT count(*) FROM outboxd.deliveries WHERE status = 'pending' "
                   "AND updated_at < now() - interval '1 second'") == 10;
      },
      15s, 50ms));
  const auto rounds = daemon.retain().rounds();
  ASSERT_TRUE(eventually([&] { return daemon.retain().rounds() >= rounds + 5; }, 10s));
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.deliveries WHERE status = 'pending'"),
            10);
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.deliveries"), 10);
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.attempts"), 10);
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.events"), 10);
  EXPECT_EQ(daemon.retain().events_purged(), 0u);
  EXPECT_EQ(daemon.retain().rounds_failed(), 0u);
}

TEST(retention, zero_keeps_everything) {
  test_database db;
  history h{db.sql()};
  const aged_rows rows(h);
  const auto count = [&] {
    return db.sql().scalar(
        "SELECT (SELECT count(*) FROM outboxd.events) + (SELECT count(*) FROM "
        "outboxd.deliveries) + (SELECT count(*) FROM outboxd.attempts)");
  };
  const auto before = count();
  ASSERT_EQ(before, 6 + 7 + 7);

  const auto round = purge_once(db.url(), 0ms);
  EXPECT_EQ(round.deliveries + round.attempts + round.events, 0u);
  EXPECT_EQ(count(), before);
  EXPECT_TRUE(h.has("deliveries", rows.succeeded));
}

struct sample {
  double seconds = 0;
  std::int64_t events = 0, deliveries = 0, attempts = 0;
  std::int64_t bytes = 0;  // the three tables with their indexes and TOAST
};

// A bounded producer: `duration` of 10 events every 100 ms, each for two webhooks whose
// receiver answers at once, sampling the tables every second.
std::vector<sample> steady_load(std::chrono::milliseconds keep, std::uint64_t& purged) {
  test_database db;
  receiver hooks;
  add_realm(db.sql(), uuid(1), "acme");
  for (int n = 1; n <= 2; ++n) {
    add_webhook(db.sql(), uuid(100 + n), uuid(1), hooks.url("/hook"));
    subscribe(db.sql(), uuid(100 + n), "user.created");
  }
  auto config = test_config(db.url());
  config.retention = keep;
  config.retention_interval = 500ms;
  sql_session sampler(db.url(), "outboxd test sampler");

  std::vector<sample> samples;
  {
    running_daemon daemon(config);
    const auto start = steady_clock::now();
    auto next = start;
    for (int tick = 0; tick < 160; ++tick) {
      db.sql().exec(
          "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
          "SELECT $1, 'user.created', $1, jsonb_build_object('n', n) "
          "FROM generate_series(1, 10) AS n",
          {uuid(1)});
      if (tick % 10 == 9) {
        // autovacuum wakes once a minute, longer than this test; vacuum as it would, so that
        // what a table's size measures is the space its live rows need.
        sampler.script("VACUUM outboxd.events, outboxd.deliveries, outboxd.attempts");
        const auto row = sampler.exec(
            "SELECT (SELECT count(*) FROM outboxd.events), "
            "(SELECT count(*) FROM outboxd.deliveries), "
            "(SELECT count(*) FROM outboxd.attempts), "
            "pg_total_relation_size('outboxd.events') + "
            "pg_total_relation_size('outboxd.deliveries') + "
            "pg_total_relation_size('outboxd.attempts')");
        samples.push_back({std::chrono::duration<double>(steady_clock::now() - start).count(),
                           row.int64(0, 0), row.int64(0, 1), row.int64(0, 2), row.int64(0, 3)});
        const auto& s = samples.back();
        std::printf("  t=%5.1fs events=%6lld deliveries=%6lld attempts=%6lld bytes=%9lld\n",
                    s.seconds, static_cast<long long>(s.events),
                    static_cast<long long>(s.deliveries), static_cast<long long>(s.attempts),
                    static_cast<long long>(s.bytes));
      }
      next += 100ms;
      std::this_thread::sleep_until(next);
    }
    purged = daemon.retain().deliveries_purged();
  }
  // The daemon kept up: everything produced was sent (the receiver saw each delivery).
  EXPECT_GE(hooks.count(), 2u * 1600u * 9 / 10);
  return samples;
}

// Rows and bytes in the last samples against the highest of the plateau that an earlier
// stretch of the run reached (samples 5 to 9: after retention's first purges).
struct growth {
  double rows = 0;
  double bytes = 0;
};
growth last_against_plateau(const std::vector<sample>& samples) {
  std::int64_t plateau_rows = 0, plateau_bytes = 0, last_rows = 0, last_bytes = 0;
  for (std::size_t i = 4; i < 9; ++i) {
    plateau_rows =
        std::max(plateau_rows, samples[i].deliveries + samples[i].attempts + samples[i].events);
    plateau_bytes = std::max(plateau_bytes, samples[i].bytes);
  }
  for (std::size_t i = samples.size() - 3; i < samples.size(); ++i) {
    last_rows =
        std::max(last_rows, samples[i].deliveries + samples[i].attempts + samples[i].events);
    last_bytes = std::max(last_bytes, samples[i].bytes);
  }
  return {
      static_cast<double>(last_rows) / static_cast<double>(std::max<std::int64_t>(plateau_rows, 1)),
      static_cast<double>(last_bytes) /
          static_cast<double>(std::max<std::int64_t>(plateau_bytes, 1))};
}

// Rows may swing by what arrives in one round (the interval) around the plateau; bytes grow a
// little while the free space map and the indexes settle. Without retention, the same load
// makes the last samples about 1.6 times the plateau (see the next test).
constexpr double kRowTolerance = 1.3;
constexpr double kByteTolerance = 1.2;

TEST(retention, under_a_steady_load_the_tables_stop_growing) {
  std::uint64_t purged = 0;
  const auto samples = steady_load(2s, purged);
  ASSERT_EQ(samples.size(), 16u);
  const auto g = last_against_plateau(samples);
  std::printf("  last/plateau: rows %.2f bytes %.2f; deliveries purged %llu\n", g.rows, g.bytes,
              static_cast<unsigned long long>(purged));
  EXPECT_GT(purged, 1000u);
  EXPECT_LE(g.rows, kRowTolerance);
  EXPECT_LE(g.bytes, kByteTolerance);
}

TEST(retention, without_retention_the_same_load_keeps_growing) {
  std::uint64_t purged = 0;
  const auto samples = steady_load(0ms, purged);
  ASSERT_EQ(samples.size(), 16u);
  const auto g = last_against_plateau(samples);
  std::printf("  last/plateau: rows %.2f bytes %.2f\n", g.rows, g.bytes);
  EXPECT_EQ(purged, 0u);
  // The check above would fail here: what it tolerates is less than what growth looks like.
  EXPECT_GT(g.rows, kRowTolerance);
  EXPECT_GT(g.bytes, kByteTolerance);
}

}  // namespace
}  // namespace outboxd::test
