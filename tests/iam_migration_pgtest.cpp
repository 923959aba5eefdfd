// The IAM migrates its own tables while outboxd runs: outboxd never blocks it, pauses dispatch
// while the tables are gone (one clear error, no event lost) and resumes by itself.
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/running_daemon.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

// Everything the daemon logs while it lives, for counting lines.
class captured_log {
 public:
  captured_log()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(10'000)),
        previous_(spdlog::default_logger()) {
    sink_->set_pattern("%l %v");
    auto logger = std::make_shared<spdlog::logger>("captured", sink_);
    logger->set_level(spdlog::level::info);
    spdlog::set_default_logger(logger);
  }
  ~captured_log() { spdlog::set_default_logger(previous_); }

  std::vector<std::string> lines_starting(std::string_view prefix) const {
    auto lines = sink_->last_formatted();
    std::erase_if(lines, [&](const std::string& line) { return !line.starts_with(prefix); });
    return lines;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// FerrisKey's two tables as tests/fixtures creates them, re-created by the IAM's migration.
constexpr std::string_view kRecreate = R"sql(
CREATE TABLE webhooks (
  id UUID PRIMARY KEY,
  realm_id UUID NOT NULL REFERENCES realms (id) ON DELETE CASCADE,
  endpoint VARCHAR(2048) NOT NULL,
  name VARCHAR(255) DEFAULT NULL,
  description VARCHAR(255) DEFAULT NULL,
  headers JSONB NOT NULL DEFAULT '{}',
  secret TEXT NOT NULL,
  last_delivery_status VARCHAR(16) NULL,
  last_delivery_error VARCHAR(255) NULL,
  triggered_at TIMESTAMP NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE webhook_subscribers (
  id UUID PRIMARY KEY,
  name VARCHAR(255) NOT NULL,
  webhook_id UUID NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE
);
)sql";

TEST(iam_migration, runs_while_outboxd_runs_and_dispatch_pauses_then_resumes_without_loss) {
  test_database db;
  auto& sql = db.sql();
  receiver hook;
  add_realm(sql, uuid(1), "a");
  add_webhook(sql, uuid(11), uuid(1), hook.url());
  subscribe(sql, uuid(11), "user.created");

  captured_log log;
  auto config = test_config(db.url());
  config.poll_interval = 50ms;
  running_daemon daemon(config);
  insert_event(sql, uuid(1), "user.created", R"({"n": 1})");
  ASSERT_TRUE(hook.wait_for_count(1, 10s)) << "the first event was not delivered";

  // A column type change of the IAM's own migration.
  const auto widened =
      sql.try_exec("ALTER TABLE webhooks ALTER COLUMN endpoint TYPE varchar(2048)");
  ASSERT_TRUE(widened) << widened.message;

  // Dropped and re-created. An event committed while they are gone waits in the outbox.
  sql.script("DROP TABLE webhook_subscribers; DROP TABLE webhooks;");
  const auto waiting = insert_event(sql, uuid(1), "user.created", R"({"n": 2})");
  const auto failures_before = daemon.dispatch().batch_failures();
  ASSERT_TRUE(
      eventually([&] { return daemon.dispatch().batch_failures() >= failures_before + 5; }, 20s))
      << "the dispatcher did not keep retrying";
  EXPECT_EQ(
      sql.scalar("SELECT count(*) FROM outboxd.outbox WHERE id = $1", {std::to_string(waiting)}),
      1);
  EXPECT_NE(daemon.dispatch().last_error().find("webhooks\" does not exist"), std::string::npos)
      << daemon.dispatch().last_error();
  const auto paused = log.lines_starting("error dispatcher:");
  ASSERT_EQ(paused.size(), 1u) << "the pause must be logged once, not per retry";
  EXPECT_NE(paused[0].find("does not exist"), std::string::npos) << paused[0];

  sql.script(std::string(kRecreate));
  add_webhook(sql, uuid(11), uuid(1), hook.url());
  subscribe(sql, uuid(11), "user.created");
  ASSERT_TRUE(hook.wait_for_count(2, 20s)) << "dispatch did not resume once the tables were back";
  const auto requests = hook.requests();
  EXPECT_NE(requests.back().body.find(R"("n": 2)"), std::string::npos) << requests.back().body;
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.outbox"), 0);
  EXPECT_TRUE(eventually([&] { return daemon.dispatch().last_error().empty(); }, 5s));
  EXPECT_EQ(log.lines_starting("error dispatcher:").size(), 1u);
  EXPECT_EQ(log.lines_starting("info dispatcher: resumed").size(), 1u);
}

}  // namespace
}  // namespace outboxd::test
