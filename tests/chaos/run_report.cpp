#include "chaos/run_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "outboxd/json_text.hpp"

namespace outboxd::chaos {
namespace {

double seconds(std::chrono::milliseconds d) { return static_cast<double>(d.count()) / 1000.0; }

double percent(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

struct kind_summary {
  int count = 0;
  int measured = 0;
  std::chrono::milliseconds longest{0};
  int longest_daemon = -1;
};

std::map<std::string, kind_summary> by_kind(const std::vector<recovery>& recoveries) {
  std::map<std::string, kind_summary> out;
  for (const auto& r : recoveries) {
    auto& k = out[std::string(fault_name(r.fault.kind))];
    ++k.count;
    if (!r.took) continue;
    ++k.measured;
    if (*r.took >= k.longest) {
      k.longest = *r.took;
      k.longest_daemon = r.fault.daemon;
    }
  }
  return out;
}

std::string daemon_name(int daemon) { return daemon < 0 ? "all" : "d" + std::to_string(daemon); }

}  // namespace

bool run_report::passed() const {
  return std::all_of(checks.begin(), checks.end(), [](const auto& c) { return c.passed(); });
}

void run_report::print(std::FILE* out) const {
  const auto& c = counts;
  fmt::print(out, "\n== outboxd-chaos: seed {}, {:.0f} s, {} daemons, {:.0f} events/s offered\n",
             seed, seconds(duration), daemons, rate);
  fmt::print(out, "command: {}\n", command);
  fmt::print(out,
             "events: {} committed, {} rolled back, {} ambiguous commits ({} of them committed)\n",
             c.events_committed, c.events_rolled_back, c.events_ambiguous, c.ambiguous_committed);
  fmt::print(out,
             "transactions: {} committed, {} rolled back, {} failed before COMMIT, {} with the "
             "COMMIT's answer lost\n",
             transactions_committed, transactions_rolled_back, transactions_failed,
             transactions_ambiguous);
  fmt::print(out,
             "deliveries: {} ({} succeeded, {} dead where the receiver always fails); {} "
             "attempts, {} of them lease_expired; {} claims\n",
             c.deliveries, c.succeeded, c.dead, c.attempts, c.lease_expired_attempts, c.claims);
  fmt::print(out,
             "receivers: {} POSTs; {} duplicate POSTs (after a 2xx) over {} messages answered "
             "2xx: {:.2f} %\n",
             c.posts, c.duplicate_posts, c.messages_answered_ok,
             percent(c.duplicate_posts, c.messages_answered_ok));
  const auto kinds = by_kind(recoveries);
  std::string faults;
  for (const auto& [name, k] : kinds) faults += fmt::format(" {} {},", name, k.count);
  if (!faults.empty()) faults.pop_back();
  fmt::print(out, "faults ({} in all, {} daemon starts):{}\n", recoveries.size(), daemon_starts,
             faults);
  std::chrono::milliseconds longest{0};
  std::string longest_what = "none measured";
  int unmeasured = 0;
  int interrupted = 0;
  for (const auto& r : recoveries) {
    if (r.interrupted) ++interrupted;
    if (!r.took) {
      if (!r.interrupted) ++unmeasured;
      continue;
    }
    if (*r.took >= longest) {
      longest = *r.took;
      longest_what = fmt::format("{} on {}", fault_name(r.fault.kind), daemon_name(r.fault.daemon));
    }
  }
  fmt::print(out,
             "recovery (fault end -> next recorded outcome): longest {:.2f} s ({}); {} "
             "interrupted by the next fault on the same target, {} with no outcome after\n",
             seconds(longest), longest_what, interrupted, unmeasured);
  for (const auto& [name, k] : kinds) {
    if (k.measured == 0) {
      fmt::print(out, "  {:<21} {:>4} injected, no recovery measured\n", name, k.count);
      continue;
    }
    fmt::print(out, "  {:<21} {:>4} injected, longest recovery {:.2f} s{}\n", name, k.count,
               seconds(k.longest),
               k.longest_daemon >= 0 ? " (d" + std::to_string(k.longest_daemon) + ")" : "");
  }
  for (const auto& e : fault_errors) fmt::print(out, "fault error: {}\n", e);
  if (converged_after) {
    fmt::print(out, "convergence: {:.1f} s after the faults stopped (bound {:.0f} s)\n",
               seconds(*converged_after), seconds(converge_bound));
  } else {
    fmt::print(out, "convergence: NOT within {:.0f} s\n", seconds(converge_bound));
  }
  fmt::print(out,
             "daemon 0 resources, largest of the first / last third ({} samples): fds {} / {}, "
             "RSS {:.1f} / {:.1f} MiB, database connections {} / {}\n",
             resources.samples, resources.first.fds, resources.last.fds,
             static_cast<double>(resources.first.rss_kib) / 1024,
             static_cast<double>(resources.last.rss_kib) / 1024, resources.first.connections,
             resources.last.connections);
  if (!daemon_error_lines.empty()) {
    fmt::print(out, "daemon log lines at error level or worse: {} (first: {})\n",
               daemon_error_lines.size(), daemon_error_lines.front());
  }
  fmt::print(out, "checks:\n");
  for (const auto& check : checks) {
    fmt::print(out, "  {} {:<36} {}\n", check.passed() ? "PASS" : "FAIL", check.name, check.what);
    if (!check.passed()) {
      fmt::print(out, "       {} offending:", check.offending);
      for (const auto& e : check.examples) fmt::print(out, " [{}]", e);
      fmt::print(out, "\n");
    }
  }
  fmt::print(out, "verdict: {}\n", passed() ? "PASS" : "FAIL");
  std::fflush(out);
}

void run_report::write_json(const std::string& path) const {
  const auto& c = counts;
  const auto str = [](std::string_view text) {
    std::string out;
    append_json_string(out, text);
    return out;
  };
  std::string json = "{";
  json += fmt::format(R"("command":{},"seed":{},"duration_s":{},"daemons":{},"rate":{},)",
                      str(command), seed, seconds(duration), daemons, rate);
  json += fmt::format(
      R"("events":{{"committed":{},"rolled_back":{},"ambiguous":{},"ambiguous_committed":{}}},)",
      c.events_committed, c.events_rolled_back, c.events_ambiguous, c.ambiguous_committed);
  json += fmt::format(
      R"("deliveries":{{"total":{},"succeeded":{},"dead":{},"attempts":{},"lease_expired":{},"claims":{}}},)",
      c.deliveries, c.succeeded, c.dead, c.attempts, c.lease_expired_attempts, c.claims);
  json += fmt::format(R"("posts":{},"duplicate_posts":{},"messages_answered_ok":{},)", c.posts,
                      c.duplicate_posts, c.messages_answered_ok);
  json += R"("faults":{)";
  bool first = true;
  for (const auto& [name, k] : by_kind(recoveries)) {
    json += fmt::format(R"({}{}:{{"count":{},"measured":{},"longest_recovery_s":{}}})",
                        first ? "" : ",", str(name), k.count, k.measured, seconds(k.longest));
    first = false;
  }
  json += "},";
  json += fmt::format(R"("converged_after_s":{},"converge_bound_s":{},)",
                      converged_after ? fmt::format("{}", seconds(*converged_after)) : "null",
                      seconds(converge_bound));
  json += fmt::format(
      R"("resources":{{"samples":{},"fds":[{},{}],"rss_kib":[{},{}],"connections":[{},{}]}},)",
      resources.samples, resources.first.fds, resources.last.fds, resources.first.rss_kib,
      resources.last.rss_kib, resources.first.connections, resources.last.connections);
  json += R"("checks":[)";
  first = true;
  for (const auto& check : checks) {
    json += fmt::format(R"({}{{"name":{},"passed":{},"offending":{}}})", first ? "" : ",",
                        str(check.name), check.passed(), check.offending);
    first = false;
  }
  json += fmt::format(R"(],"verdict":{}}})", str(passed() ? "PASS" : "FAIL"));
  std::ofstream(path) << json << "\n";
}

}  // namespace outboxd::chaos
