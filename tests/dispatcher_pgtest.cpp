// Fan-out: outbox rows become exactly one delivery per (event, subscribed webhook of its realm).
#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <vector>

#include "outboxd/dispatcher.hpp"
#include "support/dispatch_once.hpp"
#include "support/iam_rows.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

std::set<std::string> webhooks_of_event(sql_session& sql, std::int64_t event_id) {
  const auto rows =
      sql.exec("SELECT webhook_id::text FROM outboxd.deliveries WHERE event_id = $1 ORDER BY 1",
               {std::to_string(event_id)});
  std::set<std::string> out;
  for (int i = 0; i < rows.rows(); ++i) out.emplace(rows.text(i, 0));
  return out;
}

TEST(dispatcher, fans_out_to_the_subscribed_webhooks_of_the_events_realm_only) {
  test_database db;
  auto& sql = db.sql();
  const auto realm_a = uuid(1), realm_b = uuid(2);
  add_realm(sql, realm_a, "a");
  add_realm(sql, realm_b, "b");
  add_webhook(sql, uuid(11), realm_a);
  add_webhook(sql, uuid(12), realm_a);
  add_webhook(sql, uuid(13), realm_a);
  add_webhook(sql, uuid(21), realm_b);
  subscribe(sql, uuid(11), "user.created");
  subscribe(sql, uuid(12), "user.created");
  subscribe(sql, uuid(13), "user.deleted");
  subscribe(sql, uuid(21), "user.created");

  const auto created_in_a = insert_event(sql, realm_a, "user.created");
  const auto unsubscribed_in_a = insert_event(sql, realm_a, "role.created");
  const auto created_in_b = insert_event(sql, realm_b, "user.created");

  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  EXPECT_EQ(result.events, 3);
  EXPECT_EQ(result.deliveries, 3);

  EXPECT_EQ(webhooks_of_event(sql, created_in_a), (std::set{uuid(11), uuid(12)}));
  EXPECT_EQ(webhooks_of_event(sql, unsubscribed_in_a), std::set<std::string>{});
  EXPECT_EQ(webhooks_of_event(sql, created_in_b), std::set{uuid(21)});

  // Every event left the hot table, including the one nobody subscribes to, and stays queryable.
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.events"), 3);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.deliveries WHERE status = 'pending' AND "
                       "attempt_count = 0 AND next_attempt_at <= now()"),
            3);

  // A second pass finds nothing and creates nothing.
  const auto again = dispatch_once(db.url());
  ASSERT_FALSE(again.error) << again.message;
  EXPECT_EQ(again.events, 0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.deliveries"), 3);
}

TEST(dispatcher, a_webhook_subscribed_twice_to_an_event_gets_one_delivery) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1));
  subscribe(sql, uuid(11), "user.created");
  subscribe(sql, uuid(11), "user.created");  // FerrisKey does not forbid it

  const auto event = insert_event(sql, uuid(1), "user.created");
  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  EXPECT_EQ(webhooks_of_event(sql, event), std::set{uuid(11)});
}

TEST(dispatcher, a_webhook_unsubscribed_from_an_event_gets_nothing_for_it) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1));
  subscribe(sql, uuid(11), "user.created");
  subscribe(sql, uuid(11), "role.created");
  sql.exec("DELETE FROM webhook_subscribers WHERE webhook_id = $1 AND name = 'user.created'",
           {uuid(11)});

  const auto user_created = insert_event(sql, uuid(1), "user.created");
  const auto role_created = insert_event(sql, uuid(1), "role.created");
  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  EXPECT_EQ(result.events, 2);
  EXPECT_EQ(webhooks_of_event(sql, user_created), std::set<std::string>{});
  EXPECT_EQ(webhooks_of_event(sql, role_created), std::set{uuid(11)});
}

TEST(dispatcher, an_adapter_returning_a_subscription_twice_still_makes_one_delivery) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1));
  add_webhook(sql, uuid(12), uuid(1));
  subscribe(sql, uuid(11), "user.created");
  subscribe(sql, uuid(12), "user.created");
  // An adapter that returns every subscription twice.
  sql.script(
      "ALTER FUNCTION outboxd.subscriptions() RENAME TO subscriptions_once;"
      "CREATE FUNCTION outboxd.subscriptions() RETURNS TABLE (webhook_id uuid, realm_id uuid, "
      "event text, url text, headers jsonb, secret text) LANGUAGE sql STABLE AS $$ "
      "SELECT * FROM outboxd.subscriptions_once() UNION ALL "
      "SELECT * FROM outboxd.subscriptions_once() $$");
  ASSERT_EQ(sql.scalar("SELECT count(*) FROM outboxd.subscriptions()"), 4);

  const auto first = insert_event(sql, uuid(1), "user.created");
  const auto second = insert_event(sql, uuid(1), "user.created");
  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  EXPECT_EQ(result.events, 2);
  EXPECT_EQ(result.deliveries, 4);
  EXPECT_EQ(result.set_aside, 0);
  EXPECT_EQ(webhooks_of_event(sql, first), (std::set{uuid(11), uuid(12)}));
  EXPECT_EQ(webhooks_of_event(sql, second), (std::set{uuid(11), uuid(12)}));
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
}

TEST(dispatcher, an_event_whose_id_is_taken_is_set_aside_and_the_rest_of_its_batch_goes_on) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1));
  subscribe(sql, uuid(11), "user.created");
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 9; ++i) ids.push_back(insert_event(sql, uuid(1), "user.created"));
  const auto taken = ids[4];
  // The archive already has a row with that id (restored from a backup, say).
  sql.exec(
      "INSERT INTO outboxd.events (id, realm_id, event, resource_id, created_at) "
      "VALUES ($1, $2, 'user.created', $2, now())",
      {std::to_string(taken), uuid(1)});

  auto config = test_config(db.url());
  config.poll_interval = 20ms;
  running_daemon daemon(config);
  const bool emptied = eventually(
      [&] {
        return sql.scalar("SELECT count(*) FROM outboxd.outbox") == 0 &&
               daemon.dispatch().events_dispatched() + daemon.dispatch().events_set_aside() >= 9;
      },
      20s);
  ASSERT_TRUE(emptied) << "the batch holding the row never completed";

  EXPECT_EQ(daemon.dispatch().events_set_aside(), 1u);
  EXPECT_EQ(daemon.dispatch().events_dispatched(), 8u);
  const auto poison = sql.exec(
      "SELECT id, sqlstate, error_message, event, realm_id::text FROM outboxd.poison_events");
  ASSERT_EQ(poison.rows(), 1);
  EXPECT_EQ(poison.int64(0, 0), taken);
  EXPECT_EQ(poison.text(0, 1), "23505");
  EXPECT_NE(std::string(poison.text(0, 2)).find("events_pkey"), std::string::npos);
  EXPECT_EQ(std::string(poison.text(0, 2)).find("DETAIL"), std::string::npos);
  EXPECT_EQ(poison.text(0, 3), "user.created");
  EXPECT_EQ(poison.text(0, 4), uuid(1));
  for (const auto id : ids) {
    if (id == taken) continue;
    EXPECT_EQ(webhooks_of_event(sql, id), std::set{uuid(11)}) << "event " << id;
  }
  EXPECT_EQ(webhooks_of_event(sql, taken), std::set<std::string>{});
}

// A trigger on the archive that refuses one resource, as a value PostgreSQL cannot store would.
constexpr std::string_view kRefuseResource666 = R"sql(
CREATE FUNCTION public.refuse_resource_666() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.resource_id = '00000000-0000-0000-0000-000000000666' THEN
        RAISE EXCEPTION 'cannot store this value' USING ERRCODE = '{}';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER refuse_resource_666 BEFORE INSERT ON outboxd.events
    FOR EACH ROW EXECUTE FUNCTION public.refuse_resource_666();
)sql";

std::int64_t insert_event_for(sql_session& sql, const std::string& resource_id) {
  return sql.scalar(
      "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
      "VALUES ($1, 'user.created', $2, '{\"k\": [1, 2]}') RETURNING id",
      {uuid(1), resource_id});
}

std::string with_sqlstate(std::string_view sqlstate) {
  std::string script(kRefuseResource666);
  script.replace(script.find("{}"), 2, sqlstate);
  return script;
}

TEST(dispatcher, an_event_that_cannot_be_stored_is_set_aside_and_dispatched_once_replayed) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1));
  subscribe(sql, uuid(11), "user.created");
  sql.script(with_sqlstate("22023"));
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) ids.push_back(insert_event_for(sql, uuid(100 + i)));
  const auto bad = insert_event_for(sql, uuid(666));
  for (int i = 0; i < 6; ++i) ids.push_back(insert_event_for(sql, uuid(200 + i)));
  const auto created_at =
      sql.exec("SELECT created_at::text FROM outboxd.outbox WHERE id = $1", {std::to_string(bad)});

  // One call: the batch is split until the bad row is alone, which is set aside.
  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  EXPECT_EQ(result.events, 12);
  EXPECT_EQ(result.deliveries, 12);
  EXPECT_EQ(result.set_aside, 1);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
  const auto poison =
      sql.exec("SELECT id, sqlstate, error_message, data::text FROM outboxd.poison_events");
  ASSERT_EQ(poison.rows(), 1);
  EXPECT_EQ(poison.int64(0, 0), bad);
  EXPECT_EQ(poison.text(0, 1), "22023");
  EXPECT_EQ(poison.text(0, 2), "cannot store this value");
  EXPECT_EQ(poison.text(0, 3), R"({"k": [1, 2]})");
  for (const auto id : ids) EXPECT_EQ(webhooks_of_event(sql, id), std::set{uuid(11)});

  // Fixed: replayed with a new id and its original time, then dispatched like any event.
  sql.script("DROP TRIGGER refuse_resource_666 ON outboxd.events");
  const auto replayed = sql.scalar("SELECT outboxd.replay_poison_event($1)", {std::to_string(bad)});
  EXPECT_GT(replayed, bad);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.poison_events"), 0);
  EXPECT_EQ(sql.exec("SELECT created_at::text FROM outboxd.outbox WHERE id = $1",
                     {std::to_string(replayed)})
                .text(0, 0),
            created_at.text(0, 0));
  const auto again = dispatch_once(db.url());
  ASSERT_FALSE(again.error) << again.message;
  EXPECT_EQ(again.events, 1);
  EXPECT_EQ(again.set_aside, 0);
  EXPECT_EQ(webhooks_of_event(sql, replayed), std::set{uuid(11)});
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.events WHERE id = $1 AND resource_id = $2",
                       {std::to_string(replayed), uuid(666)}),
            1);
  // Replaying what is not there says so.
  EXPECT_FALSE(sql.try_exec("SELECT outboxd.replay_poison_event($1)", {std::to_string(bad)}));
}

TEST(dispatcher, an_error_no_row_causes_sets_nothing_aside_and_the_batch_is_retried_whole) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  // Undefined column: the IAM's tables changed under the adapter, say. Not the row's fault.
  sql.script(with_sqlstate("42703"));
  insert_event_for(sql, uuid(100));
  insert_event_for(sql, uuid(666));

  const auto failed = dispatch_once(db.url());
  EXPECT_TRUE(failed.error);
  EXPECT_EQ(failed.message, "cannot store this value");
  EXPECT_EQ(failed.set_aside, 0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.poison_events"), 0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 2);

  sql.script("DROP TRIGGER refuse_resource_666 ON outboxd.events");
  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  EXPECT_EQ(result.events, 2);
}

TEST(dispatcher, keeps_event_data_verbatim_whatever_json_it_is) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  const std::vector<std::string> data{R"({"id": "x", "nested": {"list": [1, 2.5, null]}})",
                                      R"(["0198c5a2-2a11-7d4f-8e2b-7c3a5f9b2d02"])",
                                      R"("0198c5a2-2a11-7d4f-8e2b-7c3a5f9b2d02")", "null"};
  for (const auto& json : data) insert_event(sql, uuid(1), "user.bulk_deleted", json);
  // SQL NULL data is accepted too (it reads as JSON null).
  sql.exec(
      "INSERT INTO outboxd.outbox (realm_id, event, resource_id) VALUES ($1, 'realm.deleted', $1)",
      {uuid(1)});

  const auto result = dispatch_once(db.url());
  ASSERT_FALSE(result.error) << result.message;
  ASSERT_EQ(result.events, 5);
  const auto rows = sql.exec("SELECT data::text FROM outboxd.events ORDER BY id");
  for (std::size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(rows.text(static_cast<int>(i), 0),
              sql.exec("SELECT $1::jsonb::text", {data[i]}).text(0, 0));
  }
  EXPECT_TRUE(rows.is_null(4, 0));
}

TEST(dispatcher, claims_at_most_a_batch_per_transaction_in_id_order) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(insert_event(sql, uuid(1), "user.created"));

  const auto first = dispatch_once(db.url(), /*batch_size=*/2);
  ASSERT_FALSE(first.error) << first.message;
  EXPECT_EQ(first.events, 2);
  EXPECT_EQ(sql.scalar("SELECT min(id) FROM outboxd.outbox"), ids[2]);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.events"), 2);
}

TEST(dispatcher, four_dispatchers_racing_fan_out_every_pair_exactly_once) {
  constexpr int kEvents = 10'000;
  constexpr int kPerTransaction = 100;
  constexpr int kSubscribed = 3;
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  for (int w = 0; w < kSubscribed; ++w) {
    add_webhook(sql, uuid(10 + w), uuid(1));
    subscribe(sql, uuid(10 + w), "user.created");
  }
  add_webhook(sql, uuid(99), uuid(1));  // subscribed to something else: gets nothing
  subscribe(sql, uuid(99), "user.deleted");

  const auto produce = [&](int transactions) {
    for (int t = 0; t < transactions; ++t) {
      sql.exec(
          "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
          "SELECT $1, 'user.created', $1, jsonb_build_object('n', n) FROM generate_series(1, $2) n",
          {uuid(1), std::to_string(kPerTransaction)});
    }
  };
  // Half the events wait in the outbox before the dispatchers start, so all four begin by
  // fighting over the same rows; the other half is committed while they run.
  const int transactions = kEvents / kPerTransaction;
  produce(transactions / 2);
  std::vector<std::unique_ptr<running_daemon>> daemons;
  for (int i = 0; i < 4; ++i) {
    auto config = test_config(db.url());
    config.poll_interval = 20ms;
    config.batch_size = 50;
    daemons.push_back(std::make_unique<running_daemon>(config));
  }
  produce(transactions - transactions / 2);
  const bool drained = eventually(
      [&] {
        std::uint64_t total = 0;
        for (const auto& d : daemons) total += d->dispatch().events_dispatched();
        return total >= kEvents;
      },
      60s, 10ms);
  ASSERT_TRUE(drained) << "not every event was dispatched within 60 s";

  std::uint64_t events = 0, deliveries = 0;
  for (std::size_t i = 0; i < daemons.size(); ++i) {
    std::printf("dispatcher %zu: %llu events, %llu deliveries\n", i,
                static_cast<unsigned long long>(daemons[i]->dispatch().events_dispatched()),
                static_cast<unsigned long long>(daemons[i]->dispatch().deliveries_created()));
    events += daemons[i]->dispatch().events_dispatched();
    deliveries += daemons[i]->dispatch().deliveries_created();
  }
  daemons.clear();

  // Each event was claimed by exactly one dispatcher, and each pair exists exactly once.
  EXPECT_EQ(events, static_cast<std::uint64_t>(kEvents));
  EXPECT_EQ(deliveries, static_cast<std::uint64_t>(kEvents * kSubscribed));
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.events"), kEvents);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.deliveries"), kEvents * kSubscribed);
  EXPECT_EQ(sql.scalar("SELECT count(DISTINCT (event_id, webhook_id)) FROM outboxd.deliveries"),
            kEvents * kSubscribed);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM (SELECT event_id FROM outboxd.deliveries "
                       "GROUP BY event_id HAVING count(*) <> $1) AS wrong",
                       {std::to_string(kSubscribed)}),
            0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.deliveries WHERE webhook_id = $1", {uuid(99)}),
            0);
}

TEST(dispatcher, a_rolled_back_producer_transaction_leaves_no_event_and_no_delivery) {
  test_database db;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1));
  subscribe(sql, uuid(11), "user.created");

  auto config = test_config(db.url());
  config.poll_interval = 20ms;
  running_daemon daemon(config);
  // The producer's transaction is open while the dispatcher polls: its row must stay invisible.
  sql_session producer(db.url(), "iam producer");
  producer.script("BEGIN");
  insert_event(producer, uuid(1), "user.created", R"({"marker": "rolled back"})");
  const auto committed = insert_event(sql, uuid(1), "user.created", R"({"marker": "committed"})");
  ASSERT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() >= 1; }, 10s));
  producer.script("ROLLBACK");
  // Give the dispatcher a chance to see anything there is to see: one more committed event.
  insert_event(sql, uuid(1), "user.created", R"({"marker": "after"})");
  ASSERT_TRUE(eventually([&] { return daemon.dispatch().events_dispatched() >= 2; }, 10s));

  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.events WHERE data->>'marker' = 'rolled back'"),
            0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.events"), 2);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.deliveries"), 2);
  EXPECT_EQ(webhooks_of_event(sql, committed), std::set{uuid(11)});
}

}  // namespace
}  // namespace outboxd::test
