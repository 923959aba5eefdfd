// outboxd-chaos: the reliability harness. Several daemons against one PostgreSQL of its own,
// producers committing and rolling back events, receivers that fail in every way, faults on a
// seeded schedule; then convergence within a stated bound and the checks of the guarantees.
// docs/reliability.md says what is injected, what is checked and why.
#include <fmt/format.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "chaos/chaos_options.hpp"
#include "chaos/checker.hpp"
#include "chaos/claim_audit.hpp"
#include "chaos/daemon_fleet.hpp"
#include "chaos/event_ledger.hpp"
#include "chaos/fault_injector.hpp"
#include "chaos/hook_receivers.hpp"
#include "chaos/pg_cluster.hpp"
#include "chaos/producers.hpp"
#include "chaos/resource_sampler.hpp"
#include "chaos/run_report.hpp"
#include "support/daemon_process.hpp"
#include "support/iam_rows.hpp"
#include "support/sql_session.hpp"
#include "support/test_database.hpp"

namespace outboxd::chaos {
namespace {
using namespace std::chrono_literals;
using std::chrono::steady_clock;
using std::chrono::system_clock;

constexpr auto kProgressEvery = 10s;
constexpr auto kStartTimeout = 30s;
constexpr auto kShutdownTimeout = 5s;
constexpr auto kSessionsGoneTimeout = 20s;

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

// clang-format off
std::vector<std::string> daemon_arguments(const chaos_options& o) {
  return {"--allow-cidr", "127.0.0.0/8",
          "--poll-interval", "500ms",
          "--lease", ms(o.lease),
          "--http-request-timeout", ms(o.http_request_timeout),
          "--http-connect-timeout", "500ms",
          "--statement-timeout", ms(o.statement_timeout),
          "--connect-timeout", "2s",
          "--retry-schedule", "200ms,500ms,1s",
          "--max-attempts", std::to_string(o.max_attempts),
          // Faults here are far denser than in production: a delivery held by several killed
          // daemons in a row is expected, and must not end as a crash loop.
          "--max-lease-expiries", "50",
          "--reconnect-min", "50ms",
          "--reconnect-max", "1s",
          "--circuit-breaker-cooldown", "2s",
          // Few slots per endpoint, so that work queues behind slow answers and a graceful
          // restart has queued deliveries to hand back (releases are part of the lease protocol).
          "--max-in-flight-per-endpoint", "8",
          "--shutdown-timeout", ms(kShutdownTimeout),
          "--admin-address", "127.0.0.1:0"};
}
// clang-format on

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
              std::chrono::milliseconds step) {
  return test::eventually(condition, timeout, step);
}

int run(const chaos_options& o, const std::string& command) {
  const auto say = [&](const std::string& line) {
    if (!o.quiet) fmt::print(stderr, "[chaos] {}\n", line);
  };
  say("starting PostgreSQL");
  pg_cluster cluster;
  test::sql_session(cluster.url()).script("CREATE DATABASE chaos");
  const auto url = cluster.url("chaos");
  // Replaced after the faults: a database restart breaks it.
  auto session = std::make_unique<test::sql_session>(url, "chaos checker");
  auto& setup = *session;
  setup.script(test::read_text_file(OUTBOXD_FERRISKEY_FIXTURE));
  const auto migrated =
      test::run_binary(test::binary_path::at(o.outboxd), {"migrate", "--database-url", url});
  if (migrated.exit_code != 0) {
    throw std::runtime_error("outboxd migrate failed: " + migrated.err + migrated.out);
  }
  claim_audit::install(setup);

  const std::string realm = test::uuid(1);
  hook_receivers receivers({.status_500 = o.rate_500,
                            .status_429 = o.rate_429,
                            .slow = o.rate_slow,
                            .reset = o.rate_reset,
                            .max_failures_per_message = o.max_failures_per_message,
                            .slow_by = o.http_request_timeout + 500ms},
                           o.seed);
  receivers.install(setup, realm);

  daemon_fleet fleet({.binary = o.outboxd,
                      .database_url = url,
                      .daemons = o.daemons,
                      .run_arguments = daemon_arguments(o)});
  for (int d = 0; d < fleet.size(); ++d) fleet.start(d);
  // Ready when each has its sessions: its listener is the last one a daemon opens.
  if (!wait_for(
          [&] {
            return setup.scalar(
                       "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                       "'outboxd listener'") >= o.daemons;
          },
          kStartTimeout, 100ms)) {
    throw std::runtime_error("the daemons did not start:\n" + fleet.log_tail(0, 30));
  }

  event_ledger ledger;
  say(fmt::format("running for {} s: {} daemons, {} events/s offered, seed {}",
                  o.duration.count() / 1000, o.daemons, o.rate, o.seed));
  const auto started = steady_clock::now();
  const auto until = started + o.duration;
  producers producing({.url = url,
                       .realm_id = realm,
                       .threads = o.producers,
                       .rate = o.rate,
                       .max_events = o.max_events_per_transaction,
                       .rollback_share = o.rollback_share,
                       .seed = o.seed},
                      ledger);
  fault_injector faults({.kill_interval = o.kill_interval,
                         .fault_interval = o.fault_interval,
                         .restart_delay = o.restart_delay,
                         .long_fault = o.long_fault(),
                         .shutdown_timeout = kShutdownTimeout,
                         .seed = o.seed,
                         .admin_url = url},
                        fleet, cluster);
  resource_sampler sampler(
      fleet.pid(0),
      [&fleet] { return static_cast<std::int64_t>(fleet.proxy(0).open_connections()); },
      [&faults, &o] { return faults.disturbed(0, o.lease); });
  faults.start(until);
  auto next_progress = started + kProgressEvery;
  while (steady_clock::now() < until) {
    std::this_thread::sleep_for(
        std::min<steady_clock::duration>(200ms, until - steady_clock::now()));
    if (steady_clock::now() >= next_progress) {
      next_progress += kProgressEvery;
      say(fmt::format(
          "{:>4} s: {} transactions committed, {} POSTs received, {} faults",
          std::chrono::duration_cast<std::chrono::seconds>(steady_clock::now() - started).count(),
          producing.transactions_committed(), receivers.requests(), faults.faults().size()));
    }
  }
  producing.stop();
  faults.stop();
  for (int d = 0; d < fleet.size(); ++d) fleet.start(d);  // a no-op for running ones
  const auto faults_stopped = steady_clock::now();
  say("faults stopped; waiting for convergence");

  run_report report;
  report.command = command;
  report.seed = o.seed;
  report.duration = o.duration;
  report.daemons = o.daemons;
  report.rate = o.rate;
  report.converge_bound = o.converge_timeout;
  const auto unfinished = [&] {
    try {
      if (!session) session = std::make_unique<test::sql_session>(url, "chaos checker");
      return session->scalar(
          "SELECT (SELECT count(*) FROM outboxd.outbox) + (SELECT count(*) FROM "
          "outboxd.deliveries WHERE status IN ('pending', 'delivering'))");
    } catch (const std::exception&) {
      session.reset();  // PostgreSQL restarted under it: a new one next time
      return std::int64_t{-1};
    }
  };
  session.reset();
  if (wait_for([&] { return unfinished() == 0; }, o.converge_timeout, 250ms)) {
    report.converged_after =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - faults_stopped);
  }
  sampler.stop();
  session = std::make_unique<test::sql_session>(url, "chaos checker");
  auto& sql = *session;
  say("stopping the daemons");
  for (int d = 0; d < fleet.size(); ++d) fleet.terminate(d, kShutdownTimeout + 5s);
  // A daemon's last statement may still run in its server session after it exited.
  wait_for(
      [&] {
        return sql.scalar(
                   "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'outboxd "
                   "%'") == 0;
      },
      kSessionsGoneTimeout, 100ms);

  say("checking");
  checker check(sql, ledger, receivers);
  report.checks = check.run();
  report.counts = check.counts();
  report.transactions_committed = producing.transactions_committed();
  report.transactions_rolled_back = producing.transactions_rolled_back();
  report.transactions_ambiguous = producing.transactions_ambiguous();
  report.transactions_failed = producing.transactions_failed();
  report.daemon_starts = fleet.starts();
  report.daemon_error_lines = fleet.error_lines();

  check_result converged{"converged", fmt::format("nothing pending or delivering within {} s of "
                                                  "the faults' end",
                                                  o.converge_timeout.count() / 1000)};
  if (!report.converged_after) {
    converged.fail(fmt::format(
        "{} rows unfinished",
        sql.scalar("SELECT (SELECT count(*) FROM outboxd.outbox) + (SELECT count(*) FROM "
                   "outboxd.deliveries WHERE status IN ('pending', 'delivering'))")));
    const auto rows = sql.exec(
        "SELECT coalesce(string_agg(id || ':' || status, ' '), '') FROM (SELECT id, status "
        "FROM outboxd.deliveries WHERE status IN ('pending', 'delivering') ORDER BY id LIMIT 8) x");
    converged.examples.emplace_back(rows.text(0, 0));
  }
  report.checks.push_back(converged);

  report.resources = sampler.judge(report.tolerance);
  check_result growth{
      "no_resource_growth",
      fmt::format("daemon 0: fds +{}, connections +{}, RSS x{} + {} MiB at most "
                  "from the first third to the last",
                  report.tolerance.fds, report.tolerance.connections, report.tolerance.rss_factor,
                  report.tolerance.rss_slack_kib / 1024)};
  for (const auto& problem : report.resources.problems) growth.fail(problem);
  report.checks.push_back(growth);

  const auto injected = faults.faults();
  for (const auto& fault : injected) {
    recovery r{.fault = fault};
    // The next fault that hit the same target: a recovery after it began is not this one's.
    std::optional<system_clock::time_point> next_hit;
    for (const auto& other : injected) {
      if (other.daemon == fault.daemon && other.started >= fault.ended &&
          (!next_hit || other.started < *next_hit)) {
        next_hit = other.started;
      }
    }
    std::optional<system_clock::time_point> at;
    try {
      at = fault.daemon >= 0 ? claim_audit::first_outcome_by(
                                   sql, daemon_fleet::instance_id(fault.daemon), fault.ended)
                             : claim_audit::first_outcome_of_event_after(sql, fault.ended);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "outboxd-chaos: a recovery could not be measured: %s\n", e.what());
    }
    if (at && next_hit && *at > *next_hit) {
      r.interrupted = true;
    } else if (at) {
      r.took = std::chrono::duration_cast<std::chrono::milliseconds>(*at - fault.ended);
    }
    report.recoveries.push_back(r);
  }
  report.fault_errors = faults.errors();
  check_result every_fault{"every_fault_injected",
                           "each kind of fault was injected at least once, and each could be"};
  for (int k = 0; k < kFaultKinds; ++k) {
    const auto kind = static_cast<fault_kind>(k);
    if (std::none_of(injected.begin(), injected.end(),
                     [&](const fault_record& f) { return f.kind == kind; })) {
      every_fault.fail(std::string(fault_name(kind)) +
                       " never injected (is --duration long enough?)");
    }
  }
  for (const auto& e : report.fault_errors) every_fault.fail(e);
  report.checks.push_back(every_fault);

  report.print(stdout);
  if (o.report_json) report.write_json(*o.report_json);
  return report.passed() ? 0 : 1;
}

}  // namespace
}  // namespace outboxd::chaos

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto options = outboxd::chaos::parse_chaos_options(argc, argv, &exit_code);
  if (!options) return exit_code;
  std::string command = "outboxd-chaos";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  // A receiver's peer may close first; that must not kill the harness.
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return outboxd::chaos::run(*options, command);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "outboxd-chaos: the harness could not run: %s\n", e.what());
    return 3;
  }
}
