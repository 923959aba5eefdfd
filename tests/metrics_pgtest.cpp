// The real binary's /metrics against the database it worked on: every counter equals what the
// tables hold, promtool accepts the live scrape, and a real Prometheus server scraping the daemon
// reads the same values. And /readyz following PostgreSQL away and back.
#include <gtest/gtest.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "outboxd/metrics.hpp"
#include "support/daemon_process.hpp"
#include "support/http_get.hpp"
#include "support/iam_rows.hpp"
#include "support/receiver.hpp"
#include "support/tcp_proxy.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// "name{labels}" -> value, for every sample line of a text-format scrape.
std::map<std::string, double> parse_samples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    out[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return out;
}

// An executable on PATH, or empty.
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const auto candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return {};
}

// Debian's `prometheus` package brings both tools. CI must have them (scripts/lib/deps.sh
// installs it); elsewhere the test may skip.
#define REQUIRE_PROGRAM(variable, name)                                                \
  const auto variable = find_program(name);                                            \
  if (variable.empty()) {                                                              \
    if (std::getenv("CI")) FAIL() << name << " is not installed (Debian: prometheus)"; \
    GTEST_SKIP() << name << " is not installed (Debian: prometheus)";                  \
  }

std::uint16_t free_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor probe(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return probe.local_endpoint().port();
}

struct temp_dir {
  temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "outboxd_metrics_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path = pattern;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path path;
};

// A child process killed at the end of the test, whatever happens.
class child_process {
 public:
  child_process(std::vector<std::string> argv, const fs::path& log) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      const auto out = std::fopen(log.c_str(), "w");
      if (out) {
        ::dup2(::fileno(out), STDOUT_FILENO);
        ::dup2(::fileno(out), STDERR_FILENO);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~child_process() {
    ::kill(pid_, SIGTERM);
    const bool gone =
        eventually([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 10s, 20ms);
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

 private:
  pid_t pid_ = -1;
};

std::string url_encode(const std::string& text) {
  std::string out;
  for (const unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// An instant query's vector as label value -> sample value, keyed by `label` (empty: one series).
std::optional<std::map<std::string, double>> query_prometheus(std::uint16_t port,
                                                              const std::string& query,
                                                              const std::string& label) {
  const auto reply = http_get(port, "/api/v1/query?query=" + url_encode(query));
  if (reply.status != 200) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(reply.body).get(doc)) return std::nullopt;
  simdjson::dom::array results;
  if (doc["data"]["result"].get_array().get(results)) return std::nullopt;
  std::map<std::string, double> out;
  for (const auto series : results) {
    std::string_view key;
    if (!label.empty() && series["metric"][label].get_string().get(key)) return std::nullopt;
    std::string_view value;
    if (series["value"].at(1).get_string().get(value)) return std::nullopt;
    out[std::string(key)] = std::stod(std::string(value));
  }
  return out;
}

// One event stream to four webhooks whose endpoints answer 200, 500, 429 and 404, so several
// outcome classes and both final states appear. Two attempts each, 200 ms apart.
struct metrics_scene {
  static constexpr int kEvents = 12;
  test_database db;
  receiver hooks;

  metrics_scene() {
    auto& sql = db.sql();
    add_realm(sql, uuid(1), "acme");
    const std::pair<int, std::string> endpoints[] = {
        {11, "/ok"}, {12, "/fail"}, {13, "/limited"}, {14, "/missing"}};
    for (const auto& [id, path] : endpoints) {
      add_webhook(sql, uuid(id), uuid(1), hooks.url(path));
      subscribe(sql, uuid(id), "user.created");
    }
    hooks.react("/fail", {}, reaction::with_status(500));
    hooks.react("/limited", {}, reaction::with_status(429));
    hooks.react("/missing", {}, reaction::with_status(404));
    for (int i = 0; i < kEvents; ++i) insert_event(sql, uuid(1), "user.created");
  }

  // clang-format off
  std::vector<std::string> arguments(const std::string& url) const {
    return {"run",
            "--database-url", url,
            "--allow-cidr", "127.0.0.0/8",
            "--admin-address", "127.0.0.1:0",
            "--poll-interval", "200ms",
            "--metrics-sample-interval", "200ms",
            "--retry-schedule", "200ms",
            "--max-attempts", "2",
            "--http-connect-timeout", "1s",
            "--http-request-timeout", "2s",
            "--statement-timeout", "3s",
            "--reconnect-min", "50ms",
            "--reconnect-max", "200ms"};
  }
  // clang-format on

  std::int64_t count(const std::string& query) { return db.sql().scalar(query); }

  bool all_final(std::chrono::milliseconds timeout) {
    return eventually(
        [&] {
          return count("SELECT count(*) FROM outboxd.deliveries") == 4 * kEvents &&
                 count(
                     "SELECT count(*) FROM outboxd.deliveries "
                     "WHERE status IN ('pending', 'delivering')") == 0;
        },
        timeout, 50ms);
  }

  // What the metrics must say, read from the tables.
  std::map<std::string, double> expected() {
    std::map<std::string, double> out;
    out["outboxd_deliveries_created_total"] =
        static_cast<double>(count("SELECT count(*) FROM outboxd.deliveries"));
    out["outboxd_events_dispatched_total"] =
        static_cast<double>(count("SELECT count(*) FROM outboxd.events"));
    for (std::size_t i = 0; i < kAttemptClasses; ++i) {
      out[fmt_class(static_cast<attempt_class>(i))] = 0;
    }
    const auto attempts = db.sql().exec(
        "SELECT coalesce(status_code, 0), coalesce(error_code, ''), count(*) "
        "FROM outboxd.attempts GROUP BY 1, 2");
    std::int64_t sent = 0;
    for (int r = 0; r < attempts.rows(); ++r) {
      const auto c =
          classify_attempt_outcome(static_cast<int>(attempts.int64(r, 0)), attempts.text(r, 1));
      out[fmt_class(c)] += static_cast<double>(attempts.int64(r, 2));
      sent += attempts.int64(r, 2);
    }
    out["outboxd_attempt_duration_seconds_count"] = static_cast<double>(sent);
    for (const auto* state : {"succeeded", "dead", "cancelled"}) {
      out[std::string("outboxd_deliveries_finished_total{state=\"") + state + "\"}"] =
          static_cast<double>(db.sql().scalar(
              "SELECT count(*) FROM outboxd.deliveries WHERE status = $1", {state}));
    }
    out["outboxd_delivery_latency_seconds_count"] =
        static_cast<double>(count("SELECT count(*) FROM outboxd.deliveries "
                                  "WHERE status = 'succeeded'"));
    return out;
  }

  static std::string fmt_class(attempt_class c) {
    return std::string("outboxd_attempts_total{class=\"") + std::string(attempt_class_name(c)) +
           "\"}";
  }
};

// Where the scrape and the tables disagree, one line each; empty when they agree.
std::string differences(const std::map<std::string, double>& expected,
                        const std::map<std::string, double>& scraped) {
  std::string out;
  for (const auto& [series, value] : expected) {
    const auto found = scraped.find(series);
    if (found == scraped.end()) {
      out += series + ": missing, database says " + std::to_string(value) + "\n";
    } else if (found->second != value) {
      out += series + ": " + std::to_string(found->second) + ", database says " +
             std::to_string(value) + "\n";
    }
  }
  return out;
}

TEST(metrics, counters_equal_the_database_and_promtool_and_prometheus_accept_them) {
  // The database first: a missing PostgreSQL fails the test, whatever tools are installed.
  metrics_scene s;
  REQUIRE_PROGRAM(promtool, "promtool");
  REQUIRE_PROGRAM(prometheus, "prometheus");
  daemon_process daemon(s.arguments(s.db.url()));
  const auto port = daemon.admin_port(10s);
  ASSERT_TRUE(port) << daemon.log();
  ASSERT_TRUE(s.all_final(60s)) << daemon.log();

  const auto expected = s.expected();
  // Several classes, both final states: the comparison below is not of zeros.
  ASSERT_GT(expected.at("outboxd_attempts_total{class=\"success\"}"), 0);
  ASSERT_GT(expected.at("outboxd_attempts_total{class=\"server_error\"}"), 0);
  ASSERT_GT(expected.at("outboxd_attempts_total{class=\"rate_limited\"}"), 0);
  ASSERT_GT(expected.at("outboxd_attempts_total{class=\"client_error\"}"), 0);
  ASSERT_GT(expected.at("outboxd_deliveries_finished_total{state=\"dead\"}"), 0);

  // The last outcome lands in the table a moment before the daemon counts it.
  std::string scrape;
  std::string diff;
  const bool agreed = eventually(
      [&] {
        const auto reply = http_get(*port, "/metrics");
        if (reply.status != 200) return false;
        scrape = reply.body;
        diff = differences(expected, parse_samples(scrape));
        return diff.empty();
      },
      10s, 50ms);
  EXPECT_TRUE(agreed) << diff << scrape;
  const auto samples = parse_samples(scrape);
  EXPECT_EQ(samples.at("outboxd_outbox_backlog"), 0);
  EXPECT_EQ(samples.at("outboxd_listener_subscribed"), 1);
  EXPECT_EQ(samples.at("outboxd_requests_in_flight"), 0);
  EXPECT_EQ(samples.at("outboxd_build_info{version=\"" OUTBOXD_VERSION "\"}"), 1);

  // promtool's linter on the live scrape: names, types, help, units.
  temp_dir dir;
  const auto scrape_file = dir.path / "scrape.txt";
  std::ofstream(scrape_file) << scrape;
  const auto lint_log = dir.path / "promtool.log";
  const auto lint = std::system(
      (promtool + " check metrics < " + scrape_file.string() + " > " + lint_log.string() + " 2>&1")
          .c_str());
  std::ifstream lint_output(lint_log);
  const std::string lint_text((std::istreambuf_iterator<char>(lint_output)),
                              std::istreambuf_iterator<char>());
  EXPECT_TRUE(WIFEXITED(lint) && WEXITSTATUS(lint) == 0) << lint_text;

  // A real Prometheus scraping the daemon every second.
  const auto prometheus_port = free_port();
  std::ofstream(dir.path / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: outboxd\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << *port << "']\n";
  child_process server(
      {prometheus, "--config.file=" + (dir.path / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (dir.path / "tsdb").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"},
      dir.path / "prometheus.log");
  std::string seen;
  const bool prometheus_agreed = eventually(
      [&] {
        const auto created =
            query_prometheus(prometheus_port, "outboxd_deliveries_created_total", "");
        const auto attempts = query_prometheus(prometheus_port, "outboxd_attempts_total", "class");
        const auto finished =
            query_prometheus(prometheus_port, "outboxd_deliveries_finished_total", "state");
        if (!created || !attempts || !finished || created->size() != 1) return false;
        std::map<std::string, double> read;
        read["outboxd_deliveries_created_total"] = created->begin()->second;
        for (const auto& [c, v] : *attempts)
          read["outboxd_attempts_total{class=\"" + c + "\"}"] = v;
        for (const auto& [st, v] : *finished) {
          read["outboxd_deliveries_finished_total{state=\"" + st + "\"}"] = v;
        }
        std::map<std::string, double> wanted;
        for (const auto& [series, value] : expected) {
          if (series.starts_with("outboxd_deliveries_created_total") ||
              series.starts_with("outboxd_attempts_total") ||
              series.starts_with("outboxd_deliveries_finished_total")) {
            wanted[series] = value;
          }
        }
        seen = differences(wanted, read);
        return seen.empty();
      },
      60s, 250ms);
  std::ifstream prometheus_log(dir.path / "prometheus.log");
  const std::string prometheus_text((std::istreambuf_iterator<char>(prometheus_log)),
                                    std::istreambuf_iterator<char>());
  EXPECT_TRUE(prometheus_agreed) << seen << prometheus_text;
}

TEST(metrics, readyz_follows_postgresql_away_and_back) {
  test_database db;
  const auto server = endpoint_of(db.url());
  tcp_proxy proxy(server.host, server.port);
  proxy.stop();  // PostgreSQL unreachable from the start
  const auto url = with_endpoint(db.url(), proxy.host(), proxy.port());
  daemon_process daemon({"run", "--database-url", url, "--admin-address", "127.0.0.1:0",
                         "--metrics-sample-interval", "200ms", "--connect-timeout", "1s",
                         "--reconnect-min", "50ms", "--reconnect-max", "200ms"});
  const auto port = daemon.admin_port(10s);
  ASSERT_TRUE(port) << daemon.log();

  EXPECT_EQ(http_get(*port, "/healthz").status, 200);
  const auto away = http_get(*port, "/readyz");
  EXPECT_EQ(away.status, 503) << away.body;

  proxy.start();
  EXPECT_TRUE(eventually([&] { return http_get(*port, "/readyz").status == 200; }, 20s, 50ms))
      << http_get(*port, "/readyz").body << daemon.log();

  proxy.stop();
  std::string reason;
  EXPECT_TRUE(eventually(
      [&] {
        const auto reply = http_get(*port, "/readyz");
        reason = reply.body;
        return reply.status == 503;
      },
      20s, 50ms))
      << daemon.log();
  EXPECT_FALSE(reason.empty());
  EXPECT_EQ(http_get(*port, "/healthz").status, 200) << "alive while PostgreSQL is away";

  proxy.start();
  EXPECT_TRUE(eventually([&] { return http_get(*port, "/readyz").status == 200; }, 20s, 50ms))
      << http_get(*port, "/readyz").body << daemon.log();
  const auto samples = parse_samples(http_get(*port, "/metrics").body);
  EXPECT_GE(samples.at("outboxd_database_reconnects_total{session=\"listener\"}"), 1)
      << "the listener came back on a new session";
}

}  // namespace
}  // namespace outboxd::test
