// What the Helm chart (helm/outboxd) assumes of the real binary. Every metric its alert rules
// and its Grafana dashboard name is on a live scrape of `outboxd run`, and the 410 Gone that
// OutboxdWebhookDisabled alerts on moves the counter it reads. And the chart's way of passing
// FerrisKey's DATABASE_* settings, the URL `postgresql://` with libpq's PG* variables, gets both
// `outboxd migrate` and `outboxd run` to the database.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/tcp_proxy.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;

const std::string kChart = OUTBOXD_HELM_CHART;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The `expr:` of every rule in a Prometheus rule file: inline, or a `|` / `>` block (the lines
// indented deeper than `expr:`).
std::vector<std::string> rule_expressions(const std::string& yaml) {
  std::vector<std::string> out;
  std::istringstream lines(yaml);
  std::string line;
  const std::regex expr_line(R"(^(\s*)expr:\s*(.*)$)");
  bool in_block = false;
  std::size_t block_indent = 0;
  while (std::getline(lines, line)) {
    const auto indent = line.find_first_not_of(' ');
    if (in_block) {
      if (indent != std::string::npos && indent > block_indent) {
        out.back() += line.substr(indent) + "\n";
        continue;
      }
      if (indent != std::string::npos) in_block = false;
    }
    std::smatch m;
    if (!std::regex_match(line, m, expr_line)) continue;
    const std::string rest = m[2];
    if (rest.starts_with("|") || rest.starts_with(">")) {
      in_block = true;
      block_indent = static_cast<std::size_t>(m[1].length());
      out.emplace_back();
    } else {
      out.push_back(rest);
    }
  }
  return out;
}

// The PromQL of every dashboard target and template variable query.
std::vector<std::string> dashboard_expressions(const std::string& json) {
  simdjson::dom::parser parser;
  const simdjson::dom::element dashboard = parser.parse(json);
  std::vector<std::string> out;
  for (const auto panel : dashboard["panels"].get_array()) {
    for (const auto target : panel["targets"].get_array()) {
      out.emplace_back(std::string_view(target["expr"].get_string()));
    }
  }
  for (const auto variable : dashboard["templating"]["list"].get_array()) {
    std::string_view query;
    if (!variable["query"]["query"].get_string().get(query)) out.emplace_back(query);
  }
  return out;
}

// Series names in a PromQL expression: identifiers that are not followed by `(` (functions) and
// are not label names inside braces or after by/without. Only outboxd's own and Prometheus's
// `up` may appear in the chart.
std::set<std::string> metric_names(const std::string& expr) {
  std::set<std::string> out;
  const std::regex name(R"(\b(outboxd_[a-z0-9_]+|up)\b(?!\s*\())");
  for (std::sregex_iterator it(expr.begin(), expr.end(), name), end; it != end; ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

// Sample names of a text-format scrape, labels left off (histograms give _bucket, _sum, _count).
std::set<std::string> scraped_names(const std::string& scrape) {
  std::set<std::string> out;
  std::istringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    out.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return out;
}

double sample(const std::string& scrape, const std::string& series) {
  std::istringstream lines(scrape);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

TEST(helm_chart, every_metric_of_the_rules_and_the_dashboard_is_scraped_live) {
  test_database db;
  receiver hooks;
  auto& sql = db.sql();
  add_realm(sql, uuid(1), "acme");
  add_webhook(sql, uuid(11), uuid(1), hooks.url("/ok"));
  add_webhook(sql, uuid(12), uuid(1), hooks.url("/gone"));
  subscribe(sql, uuid(11), "user.created");
  subscribe(sql, uuid(12), "user.created");
  hooks.react("/gone", {}, reaction::with_status(410));
  insert_event(sql, uuid(1), "user.created");

  const auto rules = rule_expressions(read_file(kChart + "/files/prometheus-rules.yaml"));
  const auto panels = dashboard_expressions(read_file(kChart + "/files/grafana-dashboard.json"));
  ASSERT_EQ(rules.size(), 5u) << "OutboxdOldestEventAge, OutboxdDeadDeliveries, "
                                 "OutboxdWebhookDisabled, OutboxdOpenCircuits, OutboxdNotReady";
  ASSERT_GE(panels.size(), 20u);
  std::map<std::string, std::string> used;  // metric -> the first expression naming it
  for (const auto* expressions : {&rules, &panels}) {
    for (const auto& expr : *expressions) {
      const auto names = metric_names(expr);
      EXPECT_FALSE(names.empty()) << "an expression that names no outboxd metric: " << expr;
      for (const auto& n : names) used.emplace(n, expr);
    }
  }
  used.erase("up");  // Prometheus's own, per scrape target
  EXPECT_TRUE(used.contains("outboxd_webhooks_disabled_total"));
  EXPECT_TRUE(used.contains("outboxd_oldest_undispatched_event_age_seconds"));

  daemon_process daemon({"run", "--database-url", db.url(), "--allow-cidr", "127.0.0.0/8",
                         "--admin-address", "127.0.0.1:0", "--poll-interval", "200ms",
                         "--metrics-sample-interval", "200ms"});
  const auto port = daemon.admin_port(10s);
  ASSERT_TRUE(port) << daemon.log();

  // The 410 disables its webhook; the alert's counter must show it.
  std::string scrape;
  const bool disabled = eventually(
      [&] {
        const auto reply = http_get(*port, "/metrics");
        scrape = reply.body;
        return reply.status == 200 && sample(scrape, "outboxd_webhooks_disabled_total") == 1;
      },
      30s, 50ms);
  EXPECT_TRUE(disabled) << scrape << daemon.log();
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM outboxd.disabled_webhooks WHERE webhook_id = $1",
                       {uuid(12)}),
            1);

  const auto live = scraped_names(scrape);
  for (const auto& [name, expr] : used) {
    EXPECT_TRUE(live.contains(name))
        << name << " is not exported by outboxd run (used in: " << expr << ")";
  }
}

// FerrisKey's DATABASE_HOST, _PORT, _NAME, _USER, _PASSWORD as the chart passes them.
std::vector<std::string> ferriskey_environment(const test_database& db) {
  // postgresql://USER@HOST:PORT/NAME, as scripts/lib/postgres.sh makes it.
  const auto& url = db.url();
  const auto user_start = url.find("://") + 3;
  const auto user = url.substr(user_start, url.find_first_of(":@", user_start) - user_start);
  const auto server = endpoint_of(url);
  return {"OUTBOXD_DATABASE_URL=postgresql://",
          "PGHOST=" + server.host,
          "PGPORT=" + std::to_string(server.port),
          "PGDATABASE=" + db.name(),
          "PGUSER=" + user,
          "PGPASSWORD=unused-by-trust-authentication"};
}

TEST(helm_chart, ferriskey_database_settings_reach_migrate_and_run_through_libpq) {
  test_database db({.migrate = false});
  const auto environment = ferriskey_environment(db);
  auto& sql = db.sql();
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'outboxd'"), 0);

  const auto migrated = run_binary({"migrate"}, environment);
  ASSERT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  EXPECT_EQ(sql.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'outboxd'"), 1);

  receiver hooks;
  add_realm(sql, uuid(1), "acme");
  add_webhook(sql, uuid(11), uuid(1), hooks.url("/ok"));
  subscribe(sql, uuid(11), "user.created");
  insert_event(sql, uuid(1), "user.created");

  daemon_process daemon({"run", "--allow-cidr", "127.0.0.0/8", "--admin-address", "127.0.0.1:0",
                         "--poll-interval", "200ms"},
                        environment);
  const auto port = daemon.admin_port(10s);
  ASSERT_TRUE(port) << daemon.log();
  EXPECT_TRUE(eventually([&] { return http_get(*port, "/readyz").status == 200; }, 20s, 50ms))
      << http_get(*port, "/readyz").body << daemon.log();
  EXPECT_TRUE(hooks.wait_for_count(1, 20s)) << daemon.log();

  // Without PGDATABASE libpq would pick the user's name: the database it reached is the test's.
  // The outcome is written a moment after the receiver answered.
  EXPECT_TRUE(eventually(
      [&] {
        return sql.scalar("SELECT count(*) FROM outboxd.deliveries WHERE status = 'succeeded'") ==
               1;
      },
      10s, 20ms))
      << daemon.log();
}

}  // namespace
}  // namespace outboxd::test
