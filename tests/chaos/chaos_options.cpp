#include "chaos/chaos_options.hpp"

#include <charconv>
#include <cstdio>
#include <map>
#include <stdexcept>
#include <string_view>

#include "outboxd/config.hpp"

namespace outboxd::chaos {
namespace {

constexpr std::string_view kUsage = R"(usage: outboxd-chaos [options]
Runs outboxd daemons against their own PostgreSQL under load and faults, lets them converge,
then checks the bookkeeping and what the receivers saw. Exit 0 only if every check passed.

  --duration D             how long producers and faults run (default 90s)
  --daemons N              daemons against the one database (default 3, at least 2)
  --rate R                 events per second offered, all producers together (default 120)
  --producers N            producer threads, each its own session (default 4)
  --max-events N           events per transaction, 1..N (default 8)
  --rollback-share F       share of transactions rolled back (default 0.1)
  --seed N                 seeds every random choice (default 1)
  --kill-interval D        SIGKILL a daemon other than daemon 0 this often (default 4s)
  --fault-interval D       gap between the other faults (default 2s)
  --restart-delay D        a killed daemon is restarted after this (default 500ms)
  --rate-500 F             share of a message's first answers that are 500 (default 0.05)
  --rate-429 F             ... 429 with Retry-After: 1 (default 0.05)
  --rate-slow F            ... answered after the request deadline (default 0.03)
  --rate-reset F           ... a reset connection (default 0.03)
  --max-failures N         failures per message at most (default 2)
  --lease D                the daemons' --lease (default 10s)
  --http-request-timeout D the daemons' --http-request-timeout (default 1s)
  --statement-timeout D    the daemons' --statement-timeout (default 2s)
  --max-attempts N         the daemons' --max-attempts (default 6)
  --converge-timeout D     after the faults stop, how long everything may take to settle
                           (default 90s)
  --outboxd PATH           the binary under test (default: the one built with this harness)
  --report-json FILE       also write the figures and the verdict as JSON
  --quiet                  no progress lines
)";

double to_double(const std::string& text, std::string_view name) {
  std::size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 0) {
    throw std::invalid_argument(std::string(name) + ": not a non-negative number: '" + text + "'");
  }
  return value;
}

std::uint64_t to_unsigned(const std::string& text, std::string_view name) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    throw std::invalid_argument(std::string(name) + ": not a whole number: '" + text + "'");
  }
  return value;
}

int to_int(const std::string& text, std::string_view name, int min, int max) {
  const auto value = to_unsigned(text, name);
  if (value < static_cast<std::uint64_t>(min) || value > static_cast<std::uint64_t>(max)) {
    throw std::invalid_argument(std::string(name) + ": must be between " + std::to_string(min) +
                                " and " + std::to_string(max));
  }
  return static_cast<int>(value);
}

double to_share(const std::string& text, std::string_view name) {
  const auto value = to_double(text, name);
  if (value > 1) throw std::invalid_argument(std::string(name) + ": must be at most 1");
  return value;
}

void check(const chaos_options& o) {
  const double failing = o.rate_500 + o.rate_429 + o.rate_slow + o.rate_reset;
  if (failing > 0.9) throw std::invalid_argument("the failure rates add up to more than 0.9");
  if (o.max_failures_per_message >= o.max_attempts - 1) {
    throw std::invalid_argument(
        "--max-failures must stay below --max-attempts - 1, or flaky deliveries could end dead");
  }
  if (o.rate <= 0) throw std::invalid_argument("--rate must be above 0");
}

}  // namespace

std::optional<chaos_options> parse_chaos_options(int argc, char** argv, int* exit_code) {
  chaos_options o;
  o.outboxd = OUTBOXD_BINARY;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string name = argv[i];
      std::string value;
      if (name == "--help" || name == "-h") {
        std::fputs(kUsage.data(), stdout);
        *exit_code = 0;
        return std::nullopt;
      }
      if (name == "--quiet") {
        o.quiet = true;
        continue;
      }
      if (const auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name.resize(eq);
      } else {
        if (i + 1 >= argc) throw std::invalid_argument(name + ": needs a value");
        value = argv[++i];
      }
      const auto duration = [&] { return parse_duration(value, name); };
      if (name == "--duration") {
        o.duration = duration();
      } else if (name == "--daemons") {
        o.daemons = to_int(value, name, 2, 16);
      } else if (name == "--rate") {
        o.rate = to_double(value, name);
      } else if (name == "--producers") {
        o.producers = to_int(value, name, 1, 64);
      } else if (name == "--max-events") {
        o.max_events_per_transaction = to_int(value, name, 1, 1000);
      } else if (name == "--rollback-share") {
        o.rollback_share = to_share(value, name);
      } else if (name == "--seed") {
        o.seed = to_unsigned(value, name);
      } else if (name == "--kill-interval") {
        o.kill_interval = duration();
      } else if (name == "--fault-interval") {
        o.fault_interval = duration();
      } else if (name == "--restart-delay") {
        o.restart_delay = duration();
      } else if (name == "--rate-500") {
        o.rate_500 = to_share(value, name);
      } else if (name == "--rate-429") {
        o.rate_429 = to_share(value, name);
      } else if (name == "--rate-slow") {
        o.rate_slow = to_share(value, name);
      } else if (name == "--rate-reset") {
        o.rate_reset = to_share(value, name);
      } else if (name == "--max-failures") {
        o.max_failures_per_message = to_int(value, name, 0, 50);
      } else if (name == "--lease") {
        o.lease = duration();
      } else if (name == "--http-request-timeout") {
        o.http_request_timeout = duration();
      } else if (name == "--statement-timeout") {
        o.statement_timeout = duration();
      } else if (name == "--max-attempts") {
        o.max_attempts = to_int(value, name, 2, 100);
      } else if (name == "--converge-timeout") {
        o.converge_timeout = duration();
      } else if (name == "--outboxd") {
        o.outboxd = value;
      } else if (name == "--report-json") {
        o.report_json = value;
      } else {
        throw std::invalid_argument("unknown option " + name);
      }
    }
    check(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "outboxd-chaos: %s\n\n%s", e.what(), kUsage.data());
    *exit_code = 2;
    return std::nullopt;
  }
  return o;
}

}  // namespace outboxd::chaos
