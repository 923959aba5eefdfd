// Webhook secrets, header values, the database password and event data never appear in what the
// daemon and the admin commands write: a full run (deliveries succeeding over mTLS and failing, a
// secret rotated, an event PostgreSQL refuses with a cast error that quotes its data, admin
// commands, a /metrics scrape, logs in both formats, connection strings that do not work) is
// captured whole and searched for each marker.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <string>
#include <vector>

#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/test_database.hpp"
#include "support/test_pki.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

const std::string kOldSecret = "SECRET-MARKER-old-4f1e9a";
const std::string kNewSecret = "SECRET-MARKER-new-8b2c7d";
const std::string kFailingSecret = "SECRET-MARKER-failing-3a6e";
const std::string kHeaderValue = "Bearer HEADER-MARKER-c0ffee";
const std::string kPassword = "PASSWORD-MARKER-5c6d";
const std::string kData = "DATA-MARKER-7e8f";
const std::vector<std::string> kMarkers{kOldSecret, kNewSecret, kFailingSecret, kHeaderValue,
                                        kPassword,  kData,      "MARKER"};

// The test server trusts 127.0.0.1, so a password in the URL is carried (and could leak) but
// never checked.
std::string with_password(const std::string& url, const std::string& password) {
  const auto scheme = url.find("://") + 3;
  const auto at = url.find('@', scheme);
  if (at == std::string::npos) throw std::invalid_argument("expected user@ in " + url);
  return url.substr(0, at) + ":" + password + url.substr(at);
}

// Everything written, labelled by where it came from.
struct transcript {
  std::vector<std::pair<std::string, std::string>> pieces;

  void add(const std::string& label, const std::string& text) { pieces.emplace_back(label, text); }
  void add(const std::string& label, const command_output& out) {
    add(label + " (stdout)", out.out);
    add(label + " (stderr)", out.err);
  }
  void expect_no_marker() const {
    std::size_t bytes = 0;
    for (const auto& [label, text] : pieces) {
      bytes += text.size();
      for (const auto& marker : kMarkers) {
        const auto at = text.find(marker);
        EXPECT_EQ(at, std::string::npos)
            << label << " holds " << marker << ":\n"
            << text.substr(at == std::string::npos ? 0 : text.rfind('\n', at) + 1, 400);
      }
    }
    std::printf("searched %zu pieces, %zu bytes of output\n", pieces.size(), bytes);
  }
};

struct scene {
  test_database db;
  test_authority server_ca{"server CA"};
  test_authority client_ca{"client CA"};
  pem_identity client_identity =
      client_ca.issue({.common_name = "outboxd", .subject_alt_names = "", .client = true});
  temp_file trusted{server_ca.certificate_pem()};
  temp_file client_cert{client_identity.certificate};
  temp_file client_key{client_identity.key};
  receiver ok{
      {.tls = true, .identity = server_ca.issue(), .client_ca = client_ca.certificate_pem()}};
  receiver failing;
  std::string url = with_password(db.url(), kPassword);
  std::string good = uuid(11);
  std::string bad = uuid(12);

  scene() {
    auto& sql = db.sql();
    add_realm(sql, uuid(1), "acme");
    add_webhook(sql, good, uuid(1), ok.url("/hook"), kOldSecret,
                R"({"Authorization": ")" + kHeaderValue + R"("})");
    subscribe(sql, good, "user.created");
    add_webhook(sql, bad, uuid(1), failing.url("/hook"), kFailingSecret,
                R"({"Authorization": ")" + kHeaderValue + R"("})");
    subscribe(sql, bad, "user.created");
    failing.react("/hook", {}, reaction::with_status(500));
    // The IAM's side refuses one kind of event with PostgreSQL's own words, which quote the
    // value: 'invalid input syntax for type integer: "DATA-MARKER-..."'.
    sql.script(
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "  IF NEW.data ? 'poison' THEN PERFORM (NEW.data->>'poison')::int; END IF; "
        "  RETURN NEW; END $$;"
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON outboxd.events "
        "  FOR EACH ROW EXECUTE FUNCTION refuse_poison();");
  }

  std::vector<std::string> daemon_arguments(const std::string& log_format) const {
    // clang-format off
    return {"run",
            "--allow-cidr", "127.0.0.0/8",
            "--ca-file", trusted.path(),
            "--client-cert", client_cert.path(),
            "--client-key", client_key.path(),
            "--poll-interval", "100ms",
            "--retry-schedule", "100ms",
            "--max-attempts", "2",
            "--log-level", "trace",
            "--log-format", log_format};
    // clang-format on
  }
  // The connection string comes from the environment, as operators are told to pass it.
  std::vector<std::string> environment() const { return {"OUTBOXD_DATABASE_URL=" + url}; }

  void events(int n) {
    for (int i = 0; i < n; ++i) {
      insert_event(db.sql(), uuid(1), "user.created",
                   R"({"email": ")" + kData + R"(@example.com", "n": )" + std::to_string(i) + "}");
    }
  }
  std::int64_t count(const std::string& query) { return db.sql().scalar(query); }
  bool settled(std::int64_t succeeded, std::int64_t dead) {
    return eventually(
        [&] {
          return count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") ==
                     succeeded &&
                 count("SELECT count(*) FROM outboxd.deliveries WHERE status = 'dead'") == dead;
        },
        30s, 20ms);
  }
  command_output cli(std::vector<std::string> args) { return run_binary(args, environment()); }
};

TEST(secret_leak, no_secret_password_header_or_event_data_in_anything_written) {
  scene s;
  transcript all;

  // Phase 1, text logs: deliveries succeed (mTLS) and fail; one event is refused by PostgreSQL.
  {
    daemon_process daemon(s.daemon_arguments("text"), s.environment());
    const auto admin = daemon.admin_port(20s);
    ASSERT_TRUE(admin) << daemon.log();
    s.events(3);
    insert_event(s.db.sql(), uuid(1), "user.created",
                 R"({"poison": ")" + kData + R"(", "email": ")" + kData + R"("})");
    ASSERT_TRUE(s.settled(3, 3)) << daemon.log();
    ASSERT_TRUE(eventually(
        [&] { return s.count("SELECT count(*) FROM outboxd.poison_events") == 1; }, 10s, 20ms))
        << daemon.log();
    const auto metrics = http_get(*admin, "/metrics");
    EXPECT_EQ(metrics.status, 200);
    all.add("/metrics (text run)", metrics.body);
    daemon.send(SIGTERM);
    EXPECT_EQ(daemon.wait_for_exit(20s), 0);
    all.add("daemon log (text)", daemon.log());
    // The mTLS receiver saw outboxd's client certificate.
    ASSERT_GT(s.ok.count(), 0u);
    EXPECT_EQ(s.ok.requests().front().client_subject, "outboxd");
  }

  // Phase 2, JSON logs: the secret is rotated (both sign for a while), more deliveries.
  s.db.sql().exec("UPDATE webhooks SET secret = $1 WHERE id = $2", {kNewSecret, s.good});
  {
    daemon_process daemon(s.daemon_arguments("json"), s.environment());
    const auto admin = daemon.admin_port(20s);
    ASSERT_TRUE(admin) << daemon.log();
    s.events(2);
    ASSERT_TRUE(s.settled(5, 5)) << daemon.log();
    all.add("/metrics (json run)", http_get(*admin, "/metrics").body);
    daemon.send(SIGTERM);
    EXPECT_EQ(daemon.wait_for_exit(20s), 0);
    const auto log = daemon.log();
    all.add("daemon log (json)", log);
    // On loopback the database connection is local: no warning about encryption.
    EXPECT_EQ(log.find("not encrypted"), std::string::npos) << log;
  }

  // The admin commands, text and JSON.
  const auto dead =
      std::to_string(s.count("SELECT min(id) FROM outboxd.deliveries WHERE status = 'dead'"));
  const auto succeeded =
      std::to_string(s.count("SELECT min(id) FROM outboxd.deliveries WHERE status = 'succeeded'"));
  const std::vector<std::vector<std::string>> commands{
      {"status"},
      {"status", "--json"},
      {"deliveries"},
      {"deliveries", "--json"},
      {"delivery", dead},
      {"delivery", succeeded, "--json"},
      {"webhooks"},
      {"webhooks", "--json"},
      {"policy", "show"},
      {"policy", "show", s.good, "--json"},
      {"replay", "--poison", "--dry-run"},
      {"replay", dead},
      {"replay", "--webhook", s.bad, "--status", "dead", "--dry-run"},
  };
  for (const auto& args : commands) {
    std::string label = "outboxd";
    for (const auto& a : args) label += " " + a;
    const auto out = s.cli(args);
    EXPECT_EQ(out.exit_code, 0) << label << ": " << out.err;
    all.add(label, out);
  }
  for (const auto& format : {"text", "json"}) {
    all.add(std::string("outboxd status --log-format ") + format,
            s.cli({"status", "--log-format", format}));
  }

  // Connection strings that do not work: refused, malformed, in both syntaxes. libpq quotes some
  // of them, or their password, in its error; the password must not come back.
  const std::vector<std::string> broken{
      "postgresql://postgres:" + kPassword + "@127.0.0.1:1/outboxd",
      "postgresql://postgres:" + kPassword + "%zz@127.0.0.1:1/outboxd",
      "postgresql://postgres:" + kPassword + "@127.0.0.1:1/outboxd?sslmode=bogus",
      "postgresql://postgres:" + kPassword + "@[::1/outboxd",  // libpq quotes this URI whole
      "host=127.0.0.1 port=1 password=" + kPassword,
      "host=127.0.0.1 port=1 password='" + kPassword + "' bogus=1",
  };
  for (const auto& dsn : broken) {
    const auto status =
        run_binary({"status", "--connect-timeout", "1s"}, {"OUTBOXD_DATABASE_URL=" + dsn});
    EXPECT_NE(status.exit_code, 0) << dsn;
    all.add("outboxd status with a broken URL", status);
    const auto run = run_binary({"run", "--database-url", dsn, "--admin-address", "off",
                                 "--connect-timeout", "1s", "--reconnect-max", "200ms"},
                                {}, 3s);
    all.add("outboxd run with a broken URL", run);
  }

  // What the daemon stored for operators to read is output too.
  all.add("poison_events.error_message",
          std::string(s.db.sql()
                          .exec("SELECT string_agg(error_message, '\n') FROM "
                                "outboxd.poison_events")
                          .text(0, 0)));
  all.add("attempts.error_detail",
          std::string(s.db.sql()
                          .exec("SELECT coalesce(string_agg(error_detail, '\n'), '') FROM "
                                "outboxd.attempts")
                          .text(0, 0)));

  all.expect_no_marker();
}

}  // namespace
}  // namespace outboxd::test
