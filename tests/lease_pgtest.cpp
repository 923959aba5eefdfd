// The lease protocol against the real PostgreSQL: a claim token that never goes back fences every
// write, so stale, late and replayed writes change nothing; expired leases are recorded but do
// not move a delivery along its retry schedule; a crash loop ends; outcome batches are bounded.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "outboxd/delivery_store.hpp"
#include "support/dispatch_once.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;
using std::chrono::steady_clock;

// A delivery store driven step by step from the test's thread.
class store_driver {
 public:
  store_driver(const std::string& url, std::chrono::milliseconds lease,
               int max_expired_attempts = 5, std::size_t max_batch_bytes = 4 << 20)
      : store_(io_.get_executor(),
               {.database = {.url = url, .application_name = "outboxd lease test"},
                .instance_id = "lease-test",
                .lease = {.duration = lease, .request_timeout = 0ms, .statement_timeout = 0ms},
                .max_expired_attempts = max_expired_attempts,
                .max_write_batch_bytes = max_batch_bytes,
                .reconnect = {.initial = 10ms, .max = 50ms}}) {}

  std::vector<claimed_delivery> claim(std::size_t limit = 100) {
    auto result = run(store_.claim(limit));
    if (result.error) throw std::runtime_error("claim failed: " + result.message);
    return result.deliveries;
  }
  // Claims until something is due again (an expired lease), within a deadline.
  std::vector<claimed_delivery> claim_when_due(std::chrono::milliseconds timeout = 10s) {
    std::vector<claimed_delivery> got;
    eventually([&] { return !(got = claim()).empty(); }, timeout, 20ms);
    return got;
  }
  // Writes everything queued, then returns.
  void write_all() {
    store_.stop();
    run(store_.run_writer());
  }
  delivery_store& store() { return store_; }

 private:
  template <typename T>
  T run(asio::awaitable<T> operation) {
    auto result = asio::co_spawn(io_, std::move(operation), asio::use_future);
    io_.restart();
    io_.run();
    return result.get();
  }
  void run(asio::awaitable<void> operation) {
    auto result = asio::co_spawn(io_, std::move(operation), asio::use_future);
    io_.restart();
    io_.run();
    result.get();
  }

  asio::io_context io_;
  delivery_store store_;
};

// One realm, one webhook subscribed to user.created, and `events` events already fanned out.
struct lease_scene {
  test_database db;
  std::string realm = uuid(1);
  std::string webhook = uuid(11);

  explicit lease_scene(int events = 1, const std::string& endpoint = "http://127.0.0.1:9/hook") {
    auto& sql = db.sql();
    add_realm(sql, realm, "acme");
    add_webhook(sql, webhook, realm, endpoint);
    subscribe(sql, webhook, "user.created");
    for (int i = 0; i < events; ++i) insert_event(sql, realm, "user.created");
    if (events > 0) dispatch_once(db.url());
  }
  std::int64_t count(const std::string& query) { return db.sql().scalar(query); }
  std::string text(const std::string& query) {
    return std::string(db.sql().exec(query).text(0, 0));
  }
};

attempt_record succeeded(const claimed_delivery& d) {
  auto record = attempt_record::of(d);
  record.status_code = 200;
  record.succeeded = true;
  record.next = attempt_record::next_status::succeeded;
  return record;
}

TEST(lease, a_replayed_release_cannot_undo_a_newer_claim) {
  lease_scene s;
  store_driver driver(s.db.url(), 30s);
  const auto first = driver.claim();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].attempt, 1);
  EXPECT_EQ(first[0].try_number, 1);

  // Handed back unsent: no attempt row, nothing counted.
  driver.store().release(first[0], 0ms);
  driver.write_all();
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts"), 0);
  EXPECT_EQ(s.text("SELECT status || '/' || attempt_count FROM outboxd.deliveries"), "pending/0");

  const auto second = driver.claim();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_GT(second[0].claim_token, first[0].claim_token);
  EXPECT_EQ(second[0].attempt, 1);  // the release spent nothing

  // The first release again (its commit acknowledgement was lost, so it was resent): inert.
  driver.store().release(first[0], 0ms);
  driver.write_all();
  EXPECT_EQ(s.text("SELECT status || '/' || claim_token FROM outboxd.deliveries"),
            "delivering/" + std::to_string(second[0].claim_token));
  EXPECT_TRUE(driver.claim().empty()) << "the newer claim's delivery was handed to a third";

  // The second claim's own outcome still lands.
  driver.store().record(succeeded(second[0]));
  driver.write_all();
  EXPECT_EQ(s.text("SELECT status || '/' || attempt_count FROM outboxd.deliveries"), "succeeded/1");
}

TEST(lease, a_stale_outcome_after_the_lease_expired_changes_nothing) {
  lease_scene s;
  store_driver driver(s.db.url(), 300ms);
  const auto first = driver.claim();
  ASSERT_EQ(first.size(), 1u);

  // The holder stalls past its lease; the delivery is claimed again.
  const auto second = driver.claim_when_due();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempt, 2);
  EXPECT_EQ(second[0].try_number, 1) << "an expired lease moved the delivery down its schedule";
  EXPECT_EQ(s.text("SELECT error_code FROM outboxd.attempts WHERE attempt_number = 1"),
            "lease_expired");

  // The stalled holder wakes up believing its lease still holds (its clock says so) and writes
  // its success: the database's fence refuses it. Written twice, it is refused twice.
  auto stale = succeeded(first[0]);
  stale.lease_deadline = steady_clock::now() + 1h;
  driver.store().record(stale);
  driver.store().record(stale);
  driver.write_all();
  EXPECT_EQ(driver.store().outcomes_fenced_out(), 2u);
  EXPECT_EQ(s.text("SELECT error_code FROM outboxd.attempts WHERE attempt_number = 1"),
            "lease_expired");
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts"), 1);
  EXPECT_EQ(s.text("SELECT status || '/' || claim_token FROM outboxd.deliveries"),
            "delivering/" + std::to_string(second[0].claim_token));

  // The current holder's outcome lands once; its replay changes nothing.
  auto current = succeeded(second[0]);
  current.lease_deadline = steady_clock::now() + 1h;
  driver.store().record(current);
  driver.store().record(current);
  driver.write_all();
  EXPECT_EQ(s.text("SELECT status || '/' || attempt_count FROM outboxd.deliveries"), "succeeded/2");
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE succeeded"), 1);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts"), 2);
}

TEST(lease, an_outcome_not_written_before_its_lease_ends_is_abandoned) {
  lease_scene s;
  store_driver driver(s.db.url(), 300ms);
  const auto claimed = driver.claim();
  ASSERT_EQ(claimed.size(), 1u);
  // PostgreSQL was away until past the lease: the outcome must not be written any more.
  ASSERT_TRUE(eventually([&] { return steady_clock::now() > claimed[0].lease_deadline; }, 5s));
  driver.store().record(succeeded(claimed[0]));
  driver.write_all();
  EXPECT_EQ(driver.store().outcomes_abandoned(), 1u);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts"), 0);
  EXPECT_EQ(s.text("SELECT status FROM outboxd.deliveries"), "delivering");
}

TEST(lease, expired_leases_are_recorded_but_do_not_spend_tries_and_a_crash_loop_ends_dead) {
  lease_scene s;
  store_driver driver(s.db.url(), 200ms, /*max_expired_attempts=*/3);
  std::vector<int> attempts, tries;
  for (int claim = 0; claim < 3; ++claim) {
    const auto got = claim == 0 ? driver.claim() : driver.claim_when_due();
    ASSERT_EQ(got.size(), 1u) << "claim " << claim;
    EXPECT_FALSE(got[0].crash_looped);
    attempts.push_back(got[0].attempt);
    tries.push_back(got[0].try_number);
  }
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(tries, (std::vector<int>{1, 1, 1}));

  // The third expiry is one too many: dead, with its own error code, and nothing to send.
  const auto last = driver.claim_when_due();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_TRUE(last[0].crash_looped);
  EXPECT_EQ(s.text("SELECT status || '/' || attempt_count || '/' || expired_attempts "
                   "FROM outboxd.deliveries"),
            "dead/3/3");
  EXPECT_EQ(s.text("SELECT string_agg(error_code, ',' ORDER BY attempt_number) "
                   "FROM outboxd.attempts"),
            "lease_expired,lease_expired,crash_loop");
  EXPECT_TRUE(driver.claim().empty());
}

TEST(lease, outcome_batches_are_bounded_by_bytes_as_well_as_by_count) {
  constexpr int kDeliveries = 20;
  lease_scene s(kDeliveries);
  store_driver driver(s.db.url(), 30s, 5, /*max_batch_bytes=*/4096);
  const auto claimed = driver.claim();
  ASSERT_EQ(claimed.size(), static_cast<std::size_t>(kDeliveries));
  for (const auto& d : claimed) {
    auto record = succeeded(d);
    record.response_body = std::string(1000, 'x');
    driver.store().record(record);
  }
  driver.write_all();
  // About 1.3 KB of JSON per outcome: at most three fit in 4 KB, so at least seven statements.
  EXPECT_GE(driver.store().write_statements(), 7u);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'"),
            kDeliveries);
  EXPECT_EQ(s.count("SELECT count(*) FROM outboxd.attempts WHERE length(response_body) = 1000"),
            kDeliveries);
}

TEST(lease, an_outcome_the_database_refuses_for_its_size_is_isolated_and_kept_without_details) {
  // One receiver answers with a body this database refuses (SQLSTATE 54000, as a program limit
  // such as jsonb's maximum size would); the others are fine. Before, only classes 22 and 23 were
  // isolated: this batch was retried whole, forever, and every outcome behind it waited.
  test_database db;
  receiver hooks;
  add_realm(db.sql(), uuid(1), "acme");
  for (int n = 1; n <= 3; ++n) {
    add_webhook(db.sql(), uuid(10 + n), uuid(1), hooks.url("/hook" + std::to_string(n)));
    subscribe(db.sql(), uuid(10 + n), "user.created");
  }
  hooks.react("/hook2", {}, {.status = 200, .body = "too-large-to-store"});
  db.sql().script(R"sql(
    CREATE FUNCTION refuse_large() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.response_body = 'too-large-to-store' THEN
        RAISE EXCEPTION 'value too large' USING ERRCODE = '54000';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_large BEFORE INSERT ON outboxd.attempts
      FOR EACH ROW EXECUTE FUNCTION refuse_large();
  )sql");
  running_daemon daemon(test_config(db.url()));
  for (int i = 0; i < 5; ++i) insert_event(db.sql(), uuid(1), "user.created");
  ASSERT_TRUE(eventually(
      [&] {
        return db.sql().scalar(
                   "SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") == 15;
      },
      15s, 20ms))
      << "succeeded: "
      << db.sql().scalar("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'");
  // The refused ones are recorded all the same, without what could not be stored.
  EXPECT_EQ(db.sql().scalar("SELECT count(*) FROM outboxd.attempts WHERE response_body IS NULL "
                            "AND error_detail LIKE 'details not stored: SQLSTATE 54000%'"),
            5);
  EXPECT_EQ(daemon.on_loop([&] { return daemon.store().writes_dropped(); }), 0u);
}

TEST(lease, a_webhook_unsubscribed_from_the_event_after_fan_out_gets_nothing_for_it) {
  receiver hooks;
  lease_scene s(0, hooks.url("/hook"));
  subscribe(s.db.sql(), s.webhook, "role.created");
  insert_event(s.db.sql(), s.realm, "user.created");
  dispatch_once(s.db.url());
  ASSERT_EQ(s.count("SELECT count(*) FROM outboxd.deliveries"), 1);
  // Unsubscribed from user.created before the delivery went out; still subscribed to others.
  s.db.sql().exec("DELETE FROM webhook_subscribers WHERE name = 'user.created'");

  running_daemon daemon(test_config(s.db.url()));
  ASSERT_TRUE(eventually(
      [&] { return s.text("SELECT status FROM outboxd.deliveries") == "cancelled"; }, 10s, 20ms));
  EXPECT_EQ(s.text("SELECT error_code FROM outboxd.attempts"), "webhook_unsubscribed");
  EXPECT_EQ(hooks.count(), 0u);
}

}  // namespace
}  // namespace outboxd::test
