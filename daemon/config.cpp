#include "outboxd/config.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "outboxd/http/admin_server.hpp"

namespace outboxd {
namespace po = boost::program_options;
using std::chrono::milliseconds;

namespace {

constexpr std::string_view kEnvPrefix = "OUTBOXD_";

// Settings every subcommand that talks to PostgreSQL shares, as strings until validated.
struct database_flags {
  std::string url;
  std::string url_file;
  std::string connect_timeout = "5s";
  std::string statement_timeout = "30s";
  std::string log_level = "info";

  void add_to(po::options_description& options) {
    options.add_options()(
        "database-url", po::value(&url),
        "PostgreSQL connection URI or key=value string (env OUTBOXD_DATABASE_URL). Prefer the "
        "environment or --database-url-file: flags are visible to every local user")(
        "database-url-file", po::value(&url_file),
        "read the connection string from this file, e.g. a mounted Secret "
        "(env OUTBOXD_DATABASE_URL_FILE)")(
        "connect-timeout", po::value(&connect_timeout)->default_value(connect_timeout),
        "deadline for establishing a PostgreSQL session")(
        "statement-timeout", po::value(&statement_timeout)->default_value(statement_timeout),
        "deadline for every statement, enforced by the server and by outboxd")(
        "log-level", po::value(&log_level)->default_value(log_level),
        "trace, debug, info, warn or error");
  }

  database_config resolve() const {
    database_config out;
    out.url = load_url();
    out.connect_timeout = parse_duration(connect_timeout, "--connect-timeout");
    out.statement_timeout = parse_duration(statement_timeout, "--statement-timeout");
    if (out.connect_timeout < milliseconds(100)) {
      throw config_error("--connect-timeout must be at least 100ms");
    }
    if (out.statement_timeout < milliseconds(100)) {
      throw config_error("--statement-timeout must be at least 100ms");
    }
    return out;
  }

  std::string load_url() const {
    if (!url.empty() && !url_file.empty()) {
      throw config_error("set either --database-url or --database-url-file, not both");
    }
    if (!url.empty()) return url;
    if (url_file.empty()) {
      throw config_error(
          "no database: set OUTBOXD_DATABASE_URL, OUTBOXD_DATABASE_URL_FILE or --database-url");
    }
    std::ifstream file(url_file);
    if (!file) throw config_error(fmt::format("cannot read --database-url-file {}", url_file));
    std::stringstream content;
    content << file.rdbuf();
    std::string text = content.str();
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (text.empty()) throw config_error(fmt::format("--database-url-file {} is empty", url_file));
    return text;
  }
};

std::string check_log_level(const std::string& level) {
  static const std::vector<std::string> known{"trace", "debug", "info", "warn", "error"};
  if (std::find(known.begin(), known.end(), level) == known.end()) {
    throw config_error(
        fmt::format("--log-level {} is not one of trace, debug, info, warn, error", level));
  }
  return level;
}

// Flags win over the environment: store the command line first; po::store keeps the first value.
// `environment`: the options OUTBOXD_* variables may set (default: all of them).
void parse(const std::vector<std::string>& args, const po::options_description& options,
           const po::positional_options_description* positional = nullptr,
           const po::options_description* environment = nullptr) {
  const auto& from_environment = environment ? *environment : options;
  po::variables_map values;
  try {
    auto parser = po::command_line_parser(args).options(options);
    if (positional) parser.positional(*positional);
    po::store(parser.run(), values);
    po::store(po::parse_environment(
                  from_environment,
                  [&from_environment](const std::string& variable) -> std::string {
                    if (!variable.starts_with(kEnvPrefix)) return {};
                    std::string name = variable.substr(kEnvPrefix.size());
                    for (auto& c : name) {
                      c = c == '_' ? '-'
                                   : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    }
                    return from_environment.find_nothrow(name, false) ? name : "";
                  }),
              values);
    po::notify(values);
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
}

}  // namespace

int parse_count(const std::string& text, std::string_view setting, int min, int max) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    throw config_error(
        fmt::format("{} must be a whole number from {} to {}, not '{}'", setting, min, max, text));
  }
  return value;
}

namespace {

// A share above 0 and at most 1, written as a decimal fraction such as 0.5.
double parse_ratio(const std::string& text, std::string_view setting) {
  double value = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc{} || end != text.data() + text.size() || !(value > 0 && value <= 1)) {
    throw config_error(fmt::format(
        "{} must be a fraction above 0 and at most 1, like 0.5, not '{}'", setting, text));
  }
  return value;
}

struct run_flags {
  database_flags database;
  std::string poll_interval = "1s";
  std::string batch_size = "500";
  std::string reconnect_min = "100ms";
  std::string reconnect_max = "10s";
  std::string shutdown_timeout = "30s";
  std::vector<std::string> allow_cidr;
  std::string allow_cidrs;
  std::string ca_file;
  std::string http_connect_timeout = "5s";
  std::string http_request_timeout = "15s";
  std::string max_response_bytes = "4096";
  std::string max_payload_bytes = "1048576";
  std::string max_in_flight = "256";
  std::string max_in_flight_per_endpoint = "16";
  std::string claim_batch_size = "256";
  std::string retry_schedule = "5s,5m,30m,2h,5h,10h,14h,20h,24h";
  std::string max_attempts = "10";
  std::string breaker_failures = "5";
  std::string breaker_failure_ratio = "0.5";
  std::string breaker_window = "30s";
  std::string breaker_cooldown = "30s";
  std::string lease = "60s";
  std::string max_lease_expiries = "5";
  std::string instance_id;
  std::string admin_address = "127.0.0.1:9187";
  std::string metrics_sample_interval = "5s";
  std::string retention = "168h";
  std::string retention_interval = "1m";
  bool report_to_iam = false;
  std::string secret_grace = "24h";

  po::options_description describe() {
    po::options_description options("outboxd run");
    database.add_to(options);
    options.add_options()(
        "poll-interval", po::value(&poll_interval)->default_value(poll_interval),
        "look for outbox rows and due retries this often even without a notification")(
        "batch-size", po::value(&batch_size)->default_value(batch_size),
        "outbox rows claimed per dispatch transaction (1-10000)")(
        "reconnect-min", po::value(&reconnect_min)->default_value(reconnect_min),
        "first delay before reconnecting to PostgreSQL")(
        "reconnect-max", po::value(&reconnect_max)->default_value(reconnect_max),
        "longest delay between reconnection attempts")(
        "shutdown-timeout", po::value(&shutdown_timeout)->default_value(shutdown_timeout),
        "after SIGTERM, how long in-flight work may take before outboxd exits anyway")(
        "allow-cidr", po::value(&allow_cidr)->composing(),
        "repeatable: a range that private and loopback destinations may use, e.g. 10.0.0.0/8")(
        "allow-cidrs", po::value(&allow_cidrs),
        "the same, comma separated (env OUTBOXD_ALLOW_CIDRS); ignored when --allow-cidr is given")(
        "ca-file", po::value(&ca_file),
        "PEM file of CAs to trust for https endpoints, besides the system's")(
        "http-connect-timeout",
        po::value(&http_connect_timeout)->default_value(http_connect_timeout),
        "deadline to resolve, connect and finish the TLS handshake")(
        "http-request-timeout",
        po::value(&http_request_timeout)->default_value(http_request_timeout),
        "deadline for a whole attempt, connect included")(
        "max-response-bytes", po::value(&max_response_bytes)->default_value(max_response_bytes),
        "response body bytes read and kept per attempt (0-1048576)")(
        "max-payload-bytes", po::value(&max_payload_bytes)->default_value(max_payload_bytes),
        "a body larger than this is not sent: the delivery is dead with payload_too_large")(
        "max-in-flight", po::value(&max_in_flight)->default_value(max_in_flight),
        "requests in flight, all endpoints together (1-10000)")(
        "max-in-flight-per-endpoint",
        po::value(&max_in_flight_per_endpoint)->default_value(max_in_flight_per_endpoint),
        "requests in flight to one endpoint; an endpoint is scheme, host and port (1-10000)")(
        "claim-batch-size", po::value(&claim_batch_size)->default_value(claim_batch_size),
        "deliveries claimed per statement (1-10000)")(
        "retry-schedule", po::value(&retry_schedule)->default_value(retry_schedule),
        "delays after the 1st, 2nd, ... failed attempt, each with +-20% jitter")(
        "max-attempts", po::value(&max_attempts)->default_value(max_attempts),
        "attempts before a delivery is dead (1-100)")(
        "circuit-breaker-failures", po::value(&breaker_failures)->default_value(breaker_failures),
        "an endpoint's circuit opens when at least this many attempts within "
        "--circuit-breaker-window found it down: no connection, timeout, TLS, DNS, reset, or "
        "502/503/504 (any other answer, 500 and 4xx included, shows it is up) (1-1000)")(
        "circuit-breaker-failure-ratio",
        po::value(&breaker_failure_ratio)->default_value(breaker_failure_ratio),
        "and only if those are at least this share of the window's attempts (above 0, at most 1)")(
        "circuit-breaker-window", po::value(&breaker_window)->default_value(breaker_window),
        "how far back the circuit breaker counts attempts (at least 1s)")(
        "circuit-breaker-cooldown", po::value(&breaker_cooldown)->default_value(breaker_cooldown),
        "how long an open circuit sends nothing to its endpoint; then one trial request decides")(
        "lease", po::value(&lease)->default_value(lease),
        "how long a claimed delivery is held; a crashed daemon's work is retried after it. At "
        "least --http-request-timeout + --statement-timeout + 7s, so every outcome can be "
        "written in time")(
        "max-lease-expiries", po::value(&max_lease_expiries)->default_value(max_lease_expiries),
        "a delivery whose lease expired this often without an outcome (its daemon kept dying) "
        "is dead with error crash_loop (1-100)")(
        "instance-id", po::value(&instance_id),
        "this daemon's name in deliveries.leased_by (default host:pid)")(
        "admin-address", po::value(&admin_address)->default_value(admin_address),
        "host:port of the HTTP server for /metrics, /healthz and /readyz (an IP address; IPv6 "
        "as [::1]:9187; port 0 for any free port), or off")(
        "metrics-sample-interval",
        po::value(&metrics_sample_interval)->default_value(metrics_sample_interval),
        "how often the outbox backlog, due deliveries and oldest event age are read from "
        "PostgreSQL for /metrics (100ms-1h)")(
        "retention", po::value(&retention)->default_value(retention),
        "finished deliveries (succeeded, dead, cancelled), their attempts and fanned-out events "
        "are purged this long after their last change; 0 keeps everything")(
        "retention-interval", po::value(&retention_interval)->default_value(retention_interval),
        "how often a purge round runs (at least 100ms)")(
        "report-to-iam",
        po::value(&report_to_iam)->default_value(false, "false")->implicit_value(true, "true"),
        "write each webhook's last finished delivery into the IAM's webhook row, through the "
        "adapter's outboxd.report_delivery(), at most once per webhook per second")(
        "secret-grace", po::value(&secret_grace)->default_value(secret_grace),
        "after a webhook's secret changes, its previous secret signs beside the new one this "
        "long (webhook-signature carries both); 0 signs with the new one only");
    return options;
  }
};

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) {
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string default_instance_id() {
  std::array<char, 256> host{};
  if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
  return fmt::format("{}:{}", host.data(), ::getpid());
}

delivery_config resolve_delivery(const run_flags& flags) {
  delivery_config out;
  auto& http = out.http;
  std::vector<http::cidr> allowed;
  const auto cidrs = flags.allow_cidr.empty() ? split_commas(flags.allow_cidrs) : flags.allow_cidr;
  for (const auto& text : cidrs) {
    const auto parsed = http::cidr::parse(text);
    if (!parsed) {
      throw config_error(fmt::format(
          "--allow-cidr {} is not a network like 10.0.0.0/8 or fd00::/8 (no host bits set)", text));
    }
    allowed.push_back(*parsed);
  }
  http.addresses = http::address_policy(std::move(allowed));
  http.ca_file = flags.ca_file;
  if (!http.ca_file.empty() && !std::ifstream(http.ca_file)) {
    throw config_error(fmt::format("cannot read --ca-file {}", http.ca_file));
  }
  http.connect_timeout = parse_duration(flags.http_connect_timeout, "--http-connect-timeout");
  http.request_timeout = parse_duration(flags.http_request_timeout, "--http-request-timeout");
  if (http.connect_timeout < milliseconds(10) || http.request_timeout < http.connect_timeout) {
    throw config_error(
        "--http-connect-timeout must be at least 10ms and no more than --http-request-timeout");
  }
  http.max_response_bytes = static_cast<std::size_t>(
      parse_count(flags.max_response_bytes, "--max-response-bytes", 0, 1 << 20));

  auto& engine = out.engine;
  engine.max_payload_bytes = static_cast<std::size_t>(
      parse_count(flags.max_payload_bytes, "--max-payload-bytes", 1, 64 << 20));
  engine.claim_batch = static_cast<std::size_t>(
      parse_count(flags.claim_batch_size, "--claim-batch-size", 1, 10'000));
  engine.scheduling.max_in_flight =
      static_cast<std::size_t>(parse_count(flags.max_in_flight, "--max-in-flight", 1, 10'000));
  engine.scheduling.max_in_flight_per_endpoint = static_cast<std::size_t>(
      parse_count(flags.max_in_flight_per_endpoint, "--max-in-flight-per-endpoint", 1, 10'000));
  engine.scheduling.max_queued_per_endpoint = engine.scheduling.max_in_flight_per_endpoint * 4;
  auto& breaker = engine.scheduling.breaker;
  breaker.min_failures = parse_count(flags.breaker_failures, "--circuit-breaker-failures", 1, 1000);
  breaker.failure_ratio =
      parse_ratio(flags.breaker_failure_ratio, "--circuit-breaker-failure-ratio");
  breaker.window = parse_duration(flags.breaker_window, "--circuit-breaker-window");
  if (breaker.window < std::chrono::seconds(1)) {
    throw config_error(fmt::format("--circuit-breaker-window must be at least 1s, not '{}'",
                                   flags.breaker_window));
  }
  breaker.cooldown = parse_duration(flags.breaker_cooldown, "--circuit-breaker-cooldown");
  out.lease.duration = parse_duration(flags.lease, "--lease");
  out.lease.request_timeout = http.request_timeout;
  out.max_expired_attempts = parse_count(flags.max_lease_expiries, "--max-lease-expiries", 1, 100);

  out.retry.delays = parse_retry_schedule(flags.retry_schedule);
  out.retry.max_attempts = parse_count(flags.max_attempts, "--max-attempts", 1, 100);
  out.instance_id = flags.instance_id.empty() ? default_instance_id() : flags.instance_id;
  out.secret_grace = parse_duration(flags.secret_grace, "--secret-grace");
  return out;
}

struct migrate_flags {
  database_flags database;
  std::string adapter = "ferriskey";
  std::string adapter_file;
  std::string iam_schema = "public";
  std::string lock_wait = "60s";
  std::string lock_timeout = "5s";
  std::string migrate_timeout = "1h";

  po::options_description describe() {
    po::options_description options("outboxd migrate");
    database.add_to(options);
    options.add_options()(
        "adapter", po::value(&adapter)->default_value(adapter),
        "built-in adapter that defines outboxd.subscriptions() over the IAM's tables")(
        "adapter-file", po::value(&adapter_file),
        "an adapter SQL file to use instead of a built-in one")(
        "iam-schema", po::value(&iam_schema)->default_value(iam_schema),
        "the schema holding the IAM's tables (FerrisKey's DATABASE_SCHEMA)")(
        "lock-wait", po::value(&lock_wait)->default_value(lock_wait),
        "how long to wait for another outboxd migrate to finish")(
        "lock-timeout", po::value(&lock_timeout)->default_value(lock_timeout),
        "lock_timeout of the DDL, so it never queues long in front of the IAM's traffic; "
        "retried a few times with backoff")(
        "migrate-timeout", po::value(&migrate_timeout)->default_value(migrate_timeout),
        "deadline for the whole migration (the server's statement timeout is off for it)");
    return options;
  }
};

std::string describe(po::options_description options) {
  std::ostringstream out;
  out << options;
  return out.str();
}

}  // namespace

pg::connection_options database_config::connection(std::string application_name,
                                                   std::shared_ptr<pg::outage_log> outage) const {
  return {.url = url,
          .application_name = std::move(application_name),
          .connect_timeout = connect_timeout,
          .statement_timeout = statement_timeout,
          .lock_timeout = pg::kDaemonLockTimeout,
          .outage = std::move(outage)};
}

milliseconds parse_duration(std::string_view text, std::string_view setting) {
  long long amount = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), amount);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  const auto bad = [&] {
    return config_error(
        fmt::format("{} must be a duration like 250ms, 5s, 2m or 1h, not '{}'", setting, text));
  };
  if (ec != std::errc{} || amount < 0) throw bad();
  if (unit.empty() || unit == "ms") return milliseconds(amount);
  if (unit == "s") return std::chrono::seconds(amount);
  if (unit == "m") return std::chrono::minutes(amount);
  if (unit == "h") return std::chrono::hours(amount);
  throw bad();
}

run_config parse_run_config(const std::vector<std::string>& args) {
  run_flags flags;
  parse(args, flags.describe());
  run_config out;
  out.database = flags.database.resolve();
  out.log_level = check_log_level(flags.database.log_level);
  out.poll_interval = parse_duration(flags.poll_interval, "--poll-interval");
  if (out.poll_interval < milliseconds(10) || out.poll_interval > std::chrono::hours(1)) {
    throw config_error("--poll-interval must be between 10ms and 1h");
  }
  out.batch_size = parse_count(flags.batch_size, "--batch-size", 1, 10'000);
  out.reconnect.initial = parse_duration(flags.reconnect_min, "--reconnect-min");
  out.reconnect.max = parse_duration(flags.reconnect_max, "--reconnect-max");
  if (out.reconnect.initial < milliseconds(1) || out.reconnect.max < out.reconnect.initial) {
    throw config_error("--reconnect-min must be at least 1ms and no more than --reconnect-max");
  }
  out.shutdown_timeout = parse_duration(flags.shutdown_timeout, "--shutdown-timeout");
  out.delivery = resolve_delivery(flags);
  out.delivery.lease.statement_timeout = out.database.statement_timeout;
  if (const auto problem = out.delivery.lease.problem(); !problem.empty()) {
    throw config_error(problem);
  }
  out.delivery.engine.poll_interval = out.poll_interval;
  out.delivery.engine.reconnect = out.reconnect;
  auto admin = http::parse_listen_address(flags.admin_address);
  if (!admin.problem.empty()) throw config_error(admin.problem);
  out.admin_address = admin.endpoint;
  out.metrics_sample_interval =
      parse_duration(flags.metrics_sample_interval, "--metrics-sample-interval");
  if (out.metrics_sample_interval < milliseconds(100) ||
      out.metrics_sample_interval > std::chrono::hours(1)) {
    throw config_error("--metrics-sample-interval must be between 100ms and 1h");
  }
  out.retention = parse_duration(flags.retention, "--retention");
  out.retention_interval = parse_duration(flags.retention_interval, "--retention-interval");
  if (out.retention_interval < milliseconds(100)) {
    throw config_error("--retention-interval must be at least 100ms");
  }
  out.report_to_iam = flags.report_to_iam;
  return out;
}

migrate_config parse_migrate_config(const std::vector<std::string>& args) {
  migrate_flags flags;
  parse(args, flags.describe());
  migrate_config out;
  out.database = flags.database.resolve();
  out.log_level = check_log_level(flags.database.log_level);
  out.adapter = flags.adapter;
  out.adapter_file = flags.adapter_file;
  out.iam_schema = flags.iam_schema;
  if (out.iam_schema.empty()) throw config_error("--iam-schema must not be empty");
  out.lock_wait = parse_duration(flags.lock_wait, "--lock-wait");
  out.lock_timeout = parse_duration(flags.lock_timeout, "--lock-timeout");
  if (out.lock_timeout < milliseconds(1)) throw config_error("--lock-timeout must be at least 1ms");
  out.migrate_timeout = parse_duration(flags.migrate_timeout, "--migrate-timeout");
  if (out.migrate_timeout < std::chrono::seconds(1)) {
    throw config_error("--migrate-timeout must be at least 1s");
  }
  return out;
}

database_command_config parse_database_command(
    const std::vector<std::string>& args, po::options_description options,
    const po::positional_options_description& positional) {
  // Only the shared database settings come from the environment: a daemon's OUTBOXD_MAX_ATTEMPTS
  // must not become an admin command's --max-attempts.
  database_flags flags;
  po::options_description database_options;
  flags.add_to(database_options);
  options.add(database_options);
  parse(args, options, &positional, &database_options);
  return {.database = flags.resolve(), .log_level = check_log_level(flags.log_level)};
}

std::string database_command_usage(po::options_description options) {
  database_flags flags;
  flags.add_to(options);
  return describe(options);
}

std::string run_usage() { return describe(run_flags{}.describe()); }

std::string migrate_usage() { return describe(migrate_flags{}.describe()); }

}  // namespace outboxd
