// The example receivers of docs/receiving.md (docs/examples/receiver.py and receiver.js, on the
// published `standardwebhooks` packages) against what outboxd really sends: the real daemon
// delivers to each, which must verify and accept it; a webhook with another secret must be
// refused (401, retried by the daemon); requests signed by outboxd's own signing code but
// tampered with, or stale, must be refused; a duplicate must be acknowledged without being
// processed twice.
//
// scripts/test.sh installs the packages (outboxd_pip_install, outboxd_npm_install). Under CI a
// missing Python, Node.js or package fails these tests; elsewhere they are skipped.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "outboxd/message.hpp"
#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/iam_rows.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Where scripts/lib/deps.sh installs test tools ($OUTBOXD_TOOLS_DIR; scripts/test.sh passes it as
// OUTBOXD_TEST_TOOLS_DIR, which the daemon's children do not inherit).
std::string tools_dir() {
  const char* dir = std::getenv("OUTBOXD_TEST_TOOLS_DIR");
  return dir && *dir ? dir : "/var/cache/outboxd-tools";
}

struct example {
  std::string name;
  other_program program;
  std::vector<std::string> arguments;
  std::vector<std::string> environment;
  std::string missing;  // what is not installed; empty when the example can run
};

example python_receiver() {
  example e{.name = "python",
            .program = {tools_dir() + "/venv/bin/python"},
            .arguments = {OUTBOXD_EXAMPLES_DIR "/receiver.py"}};
  const auto import_check = "'" + e.program.path + "' -c 'import standardwebhooks' 2>/dev/null";
  if (!fs::exists(e.program.path) || std::system(import_check.c_str()) != 0) {
    e.missing = "Python's standardwebhooks in " + tools_dir() +
                "/venv (scripts/test.sh installs it: outboxd_pip_install)";
  }
  return e;
}

example node_receiver() {
  const auto modules = tools_dir() + "/node/node_modules";
  example e{.name = "node",
            .program = {"/usr/bin/env"},
            .arguments = {"node", OUTBOXD_EXAMPLES_DIR "/receiver.js"},
            .environment = {"NODE_PATH=" + modules}};
  if (std::system("command -v node >/dev/null 2>&1") != 0) {
    e.missing = "node (Node.js)";
  } else if (!fs::exists(modules + "/standardwebhooks/package.json")) {
    e.missing = "npm's standardwebhooks in " + modules +
                " (scripts/test.sh installs it: outboxd_npm_install)";
  }
  return e;
}

#define REQUIRE_EXAMPLE(e)                                               \
  if (!(e).missing.empty()) {                                            \
    if (std::getenv("CI")) FAIL() << (e).missing << " is not installed"; \
    GTEST_SKIP() << (e).missing << " is not installed";                  \
  }

// One example receiver, started on a free loopback port with the webhook's secret.
class receiver_process {
 public:
  receiver_process(const example& e, const std::string& secret)
      : process_(e.program, e.arguments, with_secret(e.environment, secret)) {
    static constexpr std::string_view kLine = "listening on 127.0.0.1:";
    eventually(
        [&] {
          const auto text = process_.log();
          const auto at = text.find(kLine);
          const auto end = text.find('\n', at);
          if (at == std::string::npos || end == std::string::npos) return false;
          port_ = static_cast<std::uint16_t>(std::stoul(text.substr(at + kLine.size())));
          return true;
        },
        20s, 10ms);
  }

  std::optional<std::uint16_t> port() const { return port_; }
  std::string log() const { return process_.log(); }
  bool printed(const std::string& line) const {
    return log().find(line + "\n") != std::string::npos;
  }

 private:
  static std::vector<std::string> with_secret(std::vector<std::string> environment,
                                              const std::string& secret) {
    environment.push_back("WEBHOOK_SECRET=" + secret);
    environment.push_back("PORT=0");
    return environment;
  }

  daemon_process process_;
  std::optional<std::uint16_t> port_;
};

const std::string kRealm = uuid(1);
const std::string kAccepted = uuid(10);  // signs with the receiver's secret
const std::string kRefused = uuid(11);   // signs with another one
const std::string kOtherSecret = std::string(64, 'a');
// A Standard Webhooks secret: "whsec_" and base64 of the key's bytes.
const std::string kWhsecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

class receiver_examples : public ::testing::TestWithParam<example (*)()> {};

// The daemon delivers one user.created event to two webhooks at the example receiver: the one
// with the receiver's secret is verified and accepted, the other refused and left to retry.
void deliver_through_the_daemon(const example& e, const std::string& secret) {
  test_database db;
  auto& sql = db.sql();
  REQUIRE_EXAMPLE(e);
  receiver_process receiver(e, secret);
  ASSERT_TRUE(receiver.port()) << "the " << e.name << " receiver did not start:\n"
                               << receiver.log();
  const auto url = "http://127.0.0.1:" + std::to_string(*receiver.port()) + "/hook";
  add_realm(sql, kRealm, "acme");
  add_webhook(sql, kAccepted, kRealm, url, secret);
  add_webhook(sql, kRefused, kRealm, url, kOtherSecret);
  subscribe(sql, kAccepted, "user.created");
  subscribe(sql, kRefused, "user.created");

  daemon_process daemon({"run", "--database-url", db.url(), "--allow-cidr", "127.0.0.0/8",
                         "--poll-interval", "100ms", "--retry-schedule", "1h"});
  insert_event(sql, kRealm, "user.created", R"({"username": "alice"})");

  const auto delivery = [&](const std::string& webhook, const std::string& columns) {
    return std::string(
        sql.exec("SELECT " + columns + " FROM outboxd.deliveries WHERE webhook_id = $1", {webhook})
            .text(0, 0));
  };
  const auto attempted = [&](const std::string& webhook) {
    return sql.scalar(
               "SELECT count(*) FROM outboxd.attempts AS a JOIN outboxd.deliveries AS d "
               "ON d.id = a.delivery_id WHERE d.webhook_id = $1",
               {webhook}) > 0;
  };
  ASSERT_TRUE(eventually([&] { return attempted(kAccepted) && attempted(kRefused); }, 30s, 20ms))
      << daemon.log() << receiver.log();

  const auto accepted_id = delivery(kAccepted, "message_id::text");
  EXPECT_EQ(delivery(kAccepted, "status"), "succeeded") << receiver.log();
  EXPECT_TRUE(receiver.printed("accepted " + accepted_id + " user.created")) << receiver.log();

  // The other secret's signature does not verify: 401, which outboxd retries on its schedule.
  EXPECT_EQ(delivery(kRefused, "status"), "pending") << receiver.log();
  EXPECT_EQ(sql.scalar("SELECT a.status_code FROM outboxd.attempts AS a JOIN outboxd.deliveries "
                       "AS d ON d.id = a.delivery_id WHERE d.webhook_id = $1",
                       {kRefused}),
            401);
  EXPECT_TRUE(receiver.printed("rejected standard-webhooks: No matching signature found"))
      << receiver.log();
}

TEST_P(receiver_examples, verify_and_accept_what_the_daemon_sends_with_a_ferriskey_secret) {
  deliver_through_the_daemon(GetParam()(), kFerrisKeySecret);
}

TEST_P(receiver_examples, verify_and_accept_what_the_daemon_sends_with_a_whsec_secret) {
  deliver_through_the_daemon(GetParam()(), kWhsecSecret);
}

// Requests signed by outboxd's own signing code (daemon/message.cpp), then changed on the way.
TEST_P(receiver_examples, refuse_tampered_and_stale_requests_and_acknowledge_duplicates) {
  const auto e = GetParam()();
  REQUIRE_EXAMPLE(e);
  receiver_process receiver(e, kFerrisKeySecret);
  ASSERT_TRUE(receiver.port()) << receiver.log();
  const auto port = *receiver.port();

  const std::string message_id = "6f1c2b1e-8d0a-4f7e-9a55-0c9d3e2b7a10";
  const std::string body = build_body({.event = "user.created",
                                       .timestamp = "2026-12-02T03:00:00.000000Z",
                                       .resource_id = kRealm,
                                       .data = R"({"username": "alice"})"});
  const auto signed_post = [&](std::int64_t timestamp, const std::string& sent_body,
                               const std::string& ferriskey_signature = {}) {
    const auto signing = sign({.secret = kFerrisKeySecret,
                               .message_id = message_id,
                               .timestamp = timestamp,
                               .body = body});
    EXPECT_TRUE(signing.ok()) << signing.error_detail;
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& h : signing.headers) {
      const bool replaced = !ferriskey_signature.empty() && h.name == "x-ferriskey-signature";
      headers.emplace_back(h.name, replaced ? ferriskey_signature : h.value);
    }
    return http_post(port, "/hook", headers, sent_body);
  };
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();

  auto tampered = body;
  tampered.replace(tampered.find("alice"), 5, "mallo");
  auto reply = signed_post(now, tampered);
  EXPECT_EQ(reply.status, 401) << reply.error << reply.body;
  EXPECT_TRUE(receiver.printed("rejected standard-webhooks: No matching signature found"))
      << receiver.log();

  reply = signed_post(now, body, std::string(64, '0'));
  EXPECT_EQ(reply.status, 401) << reply.error << reply.body;
  EXPECT_TRUE(receiver.printed("rejected x-ferriskey-signature")) << receiver.log();

  // Signed correctly, ten minutes ago: outside the five minutes receivers accept.
  reply = signed_post(now - 600, body);
  EXPECT_EQ(reply.status, 401) << reply.error << reply.body;
  EXPECT_TRUE(receiver.printed("rejected standard-webhooks: Message timestamp too old"))
      << receiver.log();

  reply = signed_post(now, body);
  EXPECT_EQ(reply.status, 200) << reply.error << reply.body;
  EXPECT_EQ(reply.body, "accepted " + message_id + " user.created\n");

  // A retry of a message already processed: same webhook-id, same body, a later timestamp.
  reply = signed_post(now + 1, body);
  EXPECT_EQ(reply.status, 200) << reply.error << reply.body;
  EXPECT_EQ(reply.body, "duplicate " + message_id + "\n");
}

INSTANTIATE_TEST_SUITE_P(examples, receiver_examples,
                         ::testing::Values(&python_receiver, &node_receiver),
                         [](const auto& param_info) { return param_info.param().name; });

}  // namespace
}  // namespace outboxd::test
