// Secret rotation: after the IAM changes a webhook's secret, receivers still verifying with the
// old one keep accepting for --secret-grace (webhook-signature carries both), receivers already
// on the new one accept too, and once the grace is over only the new one signs.
#include <gtest/gtest.h>

#include <algorithm>

#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

const std::string kOld = kFerrisKeySecret;
const std::string kNew = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

std::size_t signatures_in(const received_request& request) {
  const auto& header = request.headers.at("webhook-signature");
  return static_cast<std::size_t>(std::count(header.begin(), header.end(), ' ')) + 1;
}

// A receiver that verifies with one key only and refuses (401) what does not verify.
reaction verifying_with(const std::string& secret, const received_request& request) {
  return verify_standard_webhooks(secret, request.headers, request.body)
             ? reaction::ok()
             : reaction::with_status(401);
}

TEST(secret_rotation, old_and_new_keys_verify_during_the_grace_and_only_the_new_one_after) {
  test_database db;
  receiver hooks;
  auto& sql = db.sql();
  const auto realm = uuid(1);
  add_realm(sql, realm, "acme");
  const auto old_only = uuid(101), new_only = uuid(102);
  add_webhook(sql, old_only, realm, hooks.url("/old-only"), kOld);
  subscribe(sql, old_only, "user.created");
  add_webhook(sql, new_only, realm, hooks.url("/new-only"), kOld);
  subscribe(sql, new_only, "user.created");
  hooks.react_with("/old-only", [](const received_request& r) { return verifying_with(kOld, r); });
  hooks.react_with("/new-only", [](const received_request& r) { return verifying_with(kNew, r); });

  auto config = test_config(db.url());
  config.delivery.retry = {.delays = {100ms}, .max_attempts = 1, .jitter = 0};
  config.delivery.secret_grace = 4s;
  // Two daemons notice the change together: it must be recorded once, and both sign with both.
  auto second = config;
  second.delivery.instance_id = "second";
  running_daemon a(config), b(second);

  const auto status_of = [&](std::int64_t event, const std::string& webhook) {
    std::string status;
    eventually(
        [&] {
          const auto row = sql.exec(
              "SELECT status FROM outboxd.deliveries WHERE event_id = $1::bigint "
              "AND webhook_id = $2 AND status IN ('succeeded', 'dead')",
              {std::to_string(event), webhook});
          if (row.rows() == 1) status = std::string(row.text(0, 0));
          return row.rows() == 1;
        },
        10s, 20ms);
    return status;
  };

  // Before the change: the old secret, alone.
  const auto before = insert_event(sql, realm, "user.created");
  EXPECT_EQ(status_of(before, old_only), "succeeded");
  EXPECT_EQ(status_of(before, new_only), "dead");  // it already expects the new key
  ASSERT_EQ(hooks.count("/old-only"), 1u);
  EXPECT_EQ(signatures_in(hooks.requests("/old-only").back()), 1u);

  sql.exec("UPDATE webhooks SET secret = $1", {kNew});
  std::vector<std::int64_t> during;
  for (int i = 0; i < 20; ++i) during.push_back(insert_event(sql, realm, "user.created"));
  for (const auto event : during) {
    EXPECT_EQ(status_of(event, old_only), "succeeded") << "event " << event;
    EXPECT_EQ(status_of(event, new_only), "succeeded") << "event " << event;
  }
  const auto requests = hooks.requests("/old-only");
  ASSERT_EQ(requests.size(), 21u);
  for (std::size_t i = 1; i < requests.size(); ++i) {
    EXPECT_EQ(signatures_in(requests[i]), 2u);
    // The new key's signature comes first; FerrisKey's own header is the new secret's.
    EXPECT_TRUE(verify_ferriskey(kNew, requests[i].headers, requests[i].body));
  }
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.webhook_secrets WHERE secret = $1 "
                       "AND previous_secret = $2 AND previous_until > now()",
                       {kNew, kOld}),
            2);

  // Once the grace is over (by the database's clock): the new secret alone.
  ASSERT_TRUE(eventually(
      [&] {
        return sql.scalar(
                   "SELECT count(*) FROM outboxd.webhook_secrets "
                   "WHERE previous_until > now()") == 0;
      },
      10s, 50ms));
  const auto after = insert_event(sql, realm, "user.created");
  EXPECT_EQ(status_of(after, new_only), "succeeded");
  EXPECT_EQ(status_of(after, old_only), "dead");
  const auto last = hooks.requests("/new-only").back();
  EXPECT_EQ(signatures_in(last), 1u);
  EXPECT_TRUE(verify_standard_webhooks(kNew, last.headers, last.body));
  EXPECT_FALSE(verify_standard_webhooks(kOld, last.headers, last.body));
}

TEST(secret_rotation, a_zero_grace_signs_with_the_new_secret_only) {
  test_database db;
  receiver hooks;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "acme");
  add_webhook(sql, uuid(101), uuid(1), hooks.url("/hook"), kOld);
  subscribe(sql, uuid(101), "user.created");
  auto config = test_config(db.url());
  config.delivery.secret_grace = 0ms;
  running_daemon daemon(config);
  insert_event(sql, uuid(1), "user.created");
  ASSERT_TRUE(hooks.wait_for_count(1, 10s));
  sql.exec("UPDATE webhooks SET secret = $1", {kNew});
  insert_event(sql, uuid(1), "user.created");
  ASSERT_TRUE(hooks.wait_for_count(2, 10s));
  const auto last = hooks.requests().back();
  EXPECT_EQ(signatures_in(last), 1u);
  EXPECT_TRUE(verify_standard_webhooks(kNew, last.headers, last.body));
}

}  // namespace
}  // namespace outboxd::test
