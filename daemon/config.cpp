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
#include <set>
#include <sstream>

#include "outboxd/cli.hpp"
#include "outboxd/http/admin_server.hpp"

extern char** environ;

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
  std::string log_format = "text";

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
        "trace, debug, info, warn or error")(
        "log-format", po::value(&log_format)->default_value(log_format),
        "text, or json: one JSON object per line with time, level, component and message");
  }

  database_config resolve() const {
    database_config out;
    out.url = load_url();
    out.connect_timeout = parse_duration(connect_timeout, "--connect-timeout");
    out.statement_timeout = parse_duration(statement_timeout, "--statement-timeout");
    if (out.connect_timeout < milliseconds(100)) {
      throw config_error("--connect-timeout", "must be at least 100ms");
    }
    if (out.statement_timeout < milliseconds(100)) {
      throw config_error("--statement-timeout", "must be at least 100ms");
    }
    return out;
  }

  std::string load_url() const {
    if (!url.empty() && !url_file.empty()) {
      throw config_error("--database-url-file", "set either it or --database-url, not both");
    }
    if (!url.empty()) return url;
    if (url_file.empty()) {
      throw config_error(
          "no database: set OUTBOXD_DATABASE_URL, OUTBOXD_DATABASE_URL_FILE, --database-url or "
          "database-url in the --config file");
    }
    std::ifstream file(url_file);
    if (!file) throw config_error("--database-url-file", fmt::format("cannot read {}", url_file));
    std::stringstream content;
    content << file.rdbuf();
    std::string text = content.str();
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
    if (text.empty())
      throw config_error("--database-url-file", fmt::format("{} is empty", url_file));
    return text;
  }
};

std::string check_log_format(const std::string& format) {
  if (format != "text" && format != "json")
    throw config_error("--log-format", "must be text or json");
  return format;
}

std::string check_log_level(const std::string& level) {
  static const std::vector<std::string> known{"trace", "debug", "info", "warn", "error"};
  if (std::find(known.begin(), known.end(), level) == known.end()) {
    throw config_error("--log-level", "must be one of trace, debug, info, warn, error");
  }
  return level;
}

}  // namespace

int parse_count(const std::string& text, std::string_view setting, int min, int max) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    throw config_error(
        std::string(setting),
        fmt::format("must be a whole number from {} to {}, not '{}'", min, max, text));
  }
  return value;
}

namespace {

// A duration from `min` to `max`, both included.
milliseconds parse_bounded_duration(const std::string& text, std::string_view setting,
                                    milliseconds min, milliseconds max) {
  const auto value = parse_duration(text, setting);
  if (value < min || value > max) {
    throw config_error(std::string(setting), fmt::format("must be from {} ms to {} ms, not '{}'",
                                                         min.count(), max.count(), text));
  }
  return value;
}

// A share above 0 and at most 1, written as a decimal fraction such as 0.5.
double parse_ratio(const std::string& text, std::string_view setting) {
  double value = 0;
  const auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
  if (ec != std::errc{} || end != text.data() + text.size() || !(value > 0 && value <= 1)) {
    throw config_error(
        std::string(setting),
        fmt::format("must be a fraction above 0 and at most 1, like 0.5, not '{}'", text));
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
  bool https_only = false;
  std::string allow_ports = "any";
  std::string client_cert;
  std::string client_key;
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
  std::string retention = "7d";
  std::string retention_interval = "1m";
  bool report_to_iam = false;
  std::string secret_grace = "24h";
  std::string dns_threads = "4";
  std::string dns_timeout = "5s";
  std::string dns_cache_ttl = "30s";
  std::string max_idle_connections = "256";
  std::string idle_connection_timeout = "30s";

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
        "https-only",
        po::value(&https_only)->default_value(false, "false")->implicit_value(true, "true"),
        "refuse http endpoints: their attempts fail with https_required")(
        "allow-ports", po::value(&allow_ports)->default_value(allow_ports),
        "ports endpoints may use, e.g. 443,8443,9000-9099, or any; other attempts fail with "
        "port_not_allowed")(
        "client-cert", po::value(&client_cert),
        "PEM file of the client certificate (and its chain) presented to https endpoints that "
        "ask for one (mTLS); needs --client-key")("client-key", po::value(&client_key),
                                                  "PEM file of the private key of --client-cert")(
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
        "long (webhook-signature carries both); 0 signs with the new one only")(
        "dns-threads", po::value(&dns_threads)->default_value(dns_threads),
        "threads resolving webhook host names, so a name whose DNS never answers holds one of "
        "them and no other name waits for it (1-64)")(
        "dns-timeout", po::value(&dns_timeout)->default_value(dns_timeout),
        "a host name lookup not answered this long after it was asked for fails the attempt "
        "with dns_timeout (10ms-60s)")(
        "dns-cache-ttl", po::value(&dns_cache_ttl)->default_value(dns_cache_ttl),
        "how long a resolved host name's addresses are reused (getaddrinfo reports no TTL); "
        "failures are kept 5s at most; 0 caches nothing (at most 1h)")(
        "max-idle-connections",
        po::value(&max_idle_connections)->default_value(max_idle_connections),
        "idle keep-alive connections kept, all endpoints together; past it the one idle "
        "longest is closed (0-100000; 0 closes every connection after its response)")(
        "idle-connection-timeout",
        po::value(&idle_connection_timeout)->default_value(idle_connection_timeout),
        "keep-alive connections idle longer are closed (10ms-1h)");
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
      throw config_error(
          flags.allow_cidr.empty() ? "--allow-cidrs" : "--allow-cidr",
          fmt::format("{} is not a network like 10.0.0.0/8 or fd00::/8 (no host bits set)", text));
    }
    allowed.push_back(*parsed);
  }
  http.addresses = http::address_policy(std::move(allowed));
  auto ports = http::endpoint_policy::parse_ports(flags.allow_ports);
  if (!ports) {
    throw config_error("--allow-ports",
                       fmt::format("must be any, or ports and ranges from 1 to 65535 like "
                                   "443,8443,9000-9099, not '{}'",
                                   flags.allow_ports));
  }
  http.endpoints = http::endpoint_policy(flags.https_only, std::move(*ports));
  http.ca_file = flags.ca_file;
  if (!http.ca_file.empty() && !std::ifstream(http.ca_file)) {
    throw config_error("--ca-file", fmt::format("cannot read {}", http.ca_file));
  }
  if (flags.client_cert.empty() != flags.client_key.empty()) {
    throw config_error(flags.client_cert.empty() ? "--client-cert" : "--client-key",
                       "--client-cert and --client-key go together: set both or neither");
  }
  for (const auto& [file, setting] : {std::pair{&flags.client_cert, "--client-cert"},
                                      std::pair{&flags.client_key, "--client-key"}}) {
    if (!file->empty() && !std::ifstream(*file)) {
      throw config_error(setting, fmt::format("cannot read {}", *file));
    }
  }
  http.client_cert_file = flags.client_cert;
  http.client_key_file = flags.client_key;
  http.connect_timeout = parse_duration(flags.http_connect_timeout, "--http-connect-timeout");
  http.request_timeout = parse_duration(flags.http_request_timeout, "--http-request-timeout");
  if (http.connect_timeout < milliseconds(10) || http.request_timeout < http.connect_timeout) {
    throw config_error("--http-connect-timeout",
                       "must be at least 10ms and no more than --http-request-timeout");
  }
  http.max_response_bytes = static_cast<std::size_t>(
      parse_count(flags.max_response_bytes, "--max-response-bytes", 0, 1 << 20));
  http.dns.threads =
      static_cast<std::size_t>(parse_count(flags.dns_threads, "--dns-threads", 1, 64));
  http.dns.timeout = parse_bounded_duration(flags.dns_timeout, "--dns-timeout", milliseconds(10),
                                            std::chrono::minutes(1));
  http.dns.cache_ttl = parse_bounded_duration(flags.dns_cache_ttl, "--dns-cache-ttl",
                                              milliseconds(0), std::chrono::hours(1));
  http.max_idle_connections = static_cast<std::size_t>(
      parse_count(flags.max_idle_connections, "--max-idle-connections", 0, 100'000));
  http.idle_timeout =
      parse_bounded_duration(flags.idle_connection_timeout, "--idle-connection-timeout",
                             milliseconds(10), std::chrono::hours(1));

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
    throw config_error("--circuit-breaker-window",
                       fmt::format("must be at least 1s, not '{}'", flags.breaker_window));
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

// Settings whose values are never shown in a message (settings::label).
bool is_secret(std::string_view name) {
  return name == "database-url" || name.find("secret") != std::string_view::npos ||
         name.find("password") != std::string_view::npos;
}

// OUTBOXD_POLL_INTERVAL → poll-interval.
std::string setting_of_variable(std::string_view variable) {
  std::string name(variable.substr(kEnvPrefix.size()));
  for (auto& c : name) {
    c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return name;
}

std::string join(const std::vector<std::string>& values, std::string_view separator) {
  std::string out;
  for (const auto& value : values) {
    if (!out.empty()) out += separator;
    out += value;
  }
  return out;
}

// One setting as the highest-precedence source gave it.
struct chosen_value {
  setting_source::kind from;
  std::vector<std::string> values;  // several when repeated (--allow-cidr a --allow-cidr b)
  std::string label;
};

class value_chooser {
 public:
  // Earlier calls are of higher precedence: a later source never overrides a setting, and the
  // values of one repeated setting only accumulate within one source.
  void offer(const std::string& name, setting_source::kind from, std::vector<std::string> values,
             const std::string& label) {
    auto [entry, inserted] = chosen_.try_emplace(name, chosen_value{from, {}, label});
    if (!inserted) {
      if (entry->second.from != from) return;
      if (from == setting_source::kind::command_line) entry->second.label += " " + label;
    }
    for (auto& value : values) entry->second.values.push_back(std::move(value));
  }
  const std::map<std::string, chosen_value>& chosen() const { return chosen_; }
  const chosen_value* find(const std::string& name) const {
    const auto found = chosen_.find(name);
    return found == chosen_.end() ? nullptr : &found->second;
  }

 private:
  std::map<std::string, chosen_value> chosen_;
};

bool has_option(const po::options_description& options, const std::string& name) {
  return options.find_nothrow(name, false) != nullptr;
}

// A name from a file or the environment as a message may show it: a NUL or another control byte
// would cut the message short or garble the terminal, so each becomes \xNN.
std::string printable(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  return out;
}

// Boost.ProgramOptions fills the placeholders of its messages in a loop that never ends when the
// text it puts in holds a placeholder again: "--allow-=%canonical_option%" or a value "%value%"
// would hang outboxd at start. No setting needs these tokens, so text holding one is refused
// before Boost sees it. `where` names the text without showing it (it may be a secret).
void refuse_placeholders(std::string_view text, const std::string& where) {
  for (const std::string_view token :
       {"%canonical_option%", "%option%", "%original_token%", "%prefix%", "%value%"}) {
    if (text.find(token) != std::string_view::npos) {
      throw config_error(fmt::format("{}: must not hold {} (no setting takes it)", where, token));
    }
  }
}

void read_file(const std::string& path, const std::string& path_label,
               const po::options_description& options, value_chooser& chooser) {
  std::ifstream in(path);
  if (!in) throw config_error(path_label, "cannot read the file");
  std::stringstream content;
  content << in.rdbuf();
  refuse_placeholders(content.str(), path);
  std::istringstream file(content.str());
  po::parsed_options parsed(&options);
  try {
    parsed = po::parse_config_file(file, options, /*allow_unregistered=*/true);
  } catch (const po::error& e) {
    throw config_error(fmt::format("{}: {}", path, e.what()));
  }
  const auto everywhere = every_setting_name();
  for (const auto& option : parsed.options) {
    const auto& name = option.string_key;
    if (name == "config" || name == "help") {
      throw config_error(fmt::format("{} in {}: not a setting a config file may hold", name, path));
    }
    if (option.unregistered) {
      if (everywhere.contains(name)) continue;  // another command's: one file serves all
      throw config_error(fmt::format(
          "{} in {}: no outboxd command has this setting (outboxd <command> --help lists them)",
          printable(name), path));
    }
    chooser.offer(name, setting_source::kind::file, option.value,
                  fmt::format("{} in {}", name, path));
  }
}

}  // namespace

config_error::config_error(std::string setting, std::string problem)
    : std::runtime_error(fmt::format("{}: {}", setting, problem)),
      setting_(std::move(setting)),
      problem_(std::move(problem)) {}

std::vector<std::string> process_environment() {
  std::vector<std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with(kEnvPrefix)) out.emplace_back(text);
  }
  return out;
}

std::string settings::label(std::string_view setting) const {
  if (setting.starts_with("--")) setting.remove_prefix(2);
  const std::string name(setting);
  const auto found = sources_.find(name);
  if (found != sources_.end() && found->second.from != setting_source::kind::default_value) {
    return found->second.label;
  }
  const auto value = values_.find(name);
  if (value == values_.end() || value->second.empty() || is_secret(name)) return "--" + name;
  return fmt::format("--{} (default {})", name, value->second);
}

config_error settings::relabel(const config_error& e) const {
  if (e.setting().empty()) return e;
  return config_error(label(e.setting()), e.problem());
}

po::options_description common_options() {
  po::options_description options("every command");
  options.add_options()("config", po::value<std::string>(),
                        "read settings from this file: one `name = value` per line with the "
                        "flags' names, # comments; flags and the environment win over it")(
      "help", "print this command's options and exit");
  return options;
}

settings read_settings(const po::options_description& command_options,
                       const settings_input& input) {
  po::options_description options;
  options.add(command_options).add(common_options());
  value_chooser chooser;
  settings out;

  po::parsed_options parsed(&options);
  try {
    for (const auto& arg : input.args) refuse_placeholders(arg, "a command-line argument");
    parsed = po::command_line_parser(input.args).options(options).run();
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
  for (const auto& option : parsed.options) {
    const auto& name = option.string_key;
    const auto shown = is_secret(name) ? "" : " " + join(option.value, " ");
    chooser.offer(name, setting_source::kind::command_line, option.value, "--" + name + shown);
  }

  const auto everywhere = every_setting_name();
  for (const auto& entry : input.environment) {
    const auto equals = entry.find('=');
    const std::string variable = entry.substr(0, equals);
    const std::string value = equals == std::string::npos ? "" : entry.substr(equals + 1);
    if (!variable.starts_with(kEnvPrefix)) continue;
    refuse_placeholders(entry, printable(variable));
    const auto name = setting_of_variable(variable);
    // "OUTBOXD_" alone names nothing (and Boost would find the empty name ambiguous).
    if (name.empty() || name == "help" ||
        !(has_option(options, name) || everywhere.contains(name))) {
      throw config_error(fmt::format(
          "{}: no outboxd command has a setting --{} (outboxd <command> --help lists them); "
          "unset it or fix its name",
          printable(variable), printable(name)));
    }
    if (!has_option(options, name)) continue;  // another command's setting
    const auto label = is_secret(name) ? variable : variable + "=" + value;
    chooser.offer(name, setting_source::kind::environment, {value}, label);
  }

  if (const auto* file = chooser.find("config"); file != nullptr && !file->values.empty()) {
    out.config_file_ = file->values.back();
    read_file(out.config_file_, file->label, options, chooser);
  }

  po::parsed_options merged(&options);
  for (const auto& [name, chosen] : chooser.chosen()) {
    merged.options.emplace_back(name, chosen.values);
    out.sources_[name] = {chosen.from, chosen.label};
  }
  po::variables_map values;
  try {
    po::store(merged, values);
    po::notify(values);
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
  for (const auto& option : command_options.options()) {
    const auto& name = option->long_name();
    std::string text;
    if (const auto found = values.find(name); found != values.end()) {
      const auto& held = found->second.value();
      if (const auto* single = boost::any_cast<std::string>(&held)) text = *single;
      if (const auto* many = boost::any_cast<std::vector<std::string>>(&held)) {
        text = join(*many, ",");
      }
      // A switch (--https-only): a reload must see it change.
      if (const auto* flag = boost::any_cast<bool>(&held)) text = *flag ? "true" : "false";
    }
    out.values_[name] = text;
  }
  return out;
}

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
        std::string(setting),
        fmt::format("must be a duration with a unit, like 250ms, 5s, 2m, 1h or 7d, not '{}'",
                    text));
  };
  if (ec != std::errc{} || amount < 0) throw bad();
  // Zero is zero in every unit; any other number needs one.
  if (unit.empty() && amount == 0) return milliseconds(0);
  long long per_ms = 0;
  if (unit == "ms") per_ms = 1;
  if (unit == "s") per_ms = 1000;
  if (unit == "m") per_ms = 60'000;
  if (unit == "h") per_ms = 3'600'000;
  if (unit == "d") per_ms = 86'400'000;
  // Up to a century, so that no later arithmetic on it overflows.
  constexpr long long kCentury = 36'500LL * 86'400'000;
  if (per_ms == 0 || amount > kCentury / per_ms) throw bad();
  return milliseconds(amount * per_ms);
}

namespace {

run_config resolve_run(const run_flags& flags) {
  run_config out;
  out.database = flags.database.resolve();
  out.log_level = check_log_level(flags.database.log_level);
  out.log_format = check_log_format(flags.database.log_format);
  out.poll_interval = parse_duration(flags.poll_interval, "--poll-interval");
  if (out.poll_interval < milliseconds(10) || out.poll_interval > std::chrono::hours(1)) {
    throw config_error("--poll-interval", "must be between 10ms and 1h");
  }
  out.batch_size = parse_count(flags.batch_size, "--batch-size", 1, 10'000);
  out.reconnect.initial = parse_duration(flags.reconnect_min, "--reconnect-min");
  out.reconnect.max = parse_duration(flags.reconnect_max, "--reconnect-max");
  if (out.reconnect.initial < milliseconds(1) || out.reconnect.max < out.reconnect.initial) {
    throw config_error("--reconnect-min", "must be at least 1ms and no more than --reconnect-max");
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
    throw config_error("--metrics-sample-interval", "must be between 100ms and 1h");
  }
  out.retention = parse_duration(flags.retention, "--retention");
  out.retention_interval = parse_duration(flags.retention_interval, "--retention-interval");
  if (out.retention_interval < milliseconds(100)) {
    throw config_error("--retention-interval", "must be at least 100ms");
  }
  out.report_to_iam = flags.report_to_iam;
  return out;
}

migrate_config resolve_migrate(const migrate_flags& flags) {
  migrate_config out;
  out.database = flags.database.resolve();
  out.log_level = check_log_level(flags.database.log_level);
  out.log_format = check_log_format(flags.database.log_format);
  out.adapter = flags.adapter;
  out.adapter_file = flags.adapter_file;
  out.iam_schema = flags.iam_schema;
  if (out.iam_schema.empty()) throw config_error("--iam-schema", "must not be empty");
  out.lock_wait = parse_duration(flags.lock_wait, "--lock-wait");
  out.lock_timeout = parse_duration(flags.lock_timeout, "--lock-timeout");
  if (out.lock_timeout < milliseconds(1))
    throw config_error("--lock-timeout", "must be at least 1ms");
  out.migrate_timeout = parse_duration(flags.migrate_timeout, "--migrate-timeout");
  if (out.migrate_timeout < std::chrono::seconds(1)) {
    throw config_error("--migrate-timeout", "must be at least 1s");
  }
  return out;
}

}  // namespace

run_config load_run_config(const settings_input& input) {
  run_flags flags;
  const auto read = read_settings(flags.describe(), input);
  try {
    auto out = resolve_run(flags);
    out.settings = read.values();
    return out;
  } catch (const config_error& e) {
    throw read.relabel(e);
  }
}

migrate_config load_migrate_config(const settings_input& input) {
  migrate_flags flags;
  const auto read = read_settings(flags.describe(), input);
  try {
    return resolve_migrate(flags);
  } catch (const config_error& e) {
    throw read.relabel(e);
  }
}

run_config parse_run_config(const std::vector<std::string>& args) {
  return load_run_config({args, process_environment()});
}

migrate_config parse_migrate_config(const std::vector<std::string>& args) {
  return load_migrate_config({args, process_environment()});
}

bool changes_live(std::string_view setting) {
  static const std::set<std::string_view> kLive{"log-level",
                                                "max-in-flight",
                                                "max-in-flight-per-endpoint",
                                                "retry-schedule",
                                                "max-attempts",
                                                "allow-cidr",
                                                "allow-cidrs",
                                                "https-only",
                                                "allow-ports",
                                                "circuit-breaker-failures",
                                                "circuit-breaker-failure-ratio",
                                                "circuit-breaker-window",
                                                "circuit-breaker-cooldown"};
  return kLive.contains(setting);
}

reload_plan plan_reload(const run_config& in_force, const run_config& next) {
  reload_plan plan;
  for (const auto& [name, value] : next.settings) {
    const auto old = in_force.settings.find(name);
    const std::string before = old == in_force.settings.end() ? "" : old->second;
    if (before == value) continue;
    if (!changes_live(name)) {
      plan.restart.push_back(name);
    } else {
      // No live setting is a secret, so its values may be shown.
      plan.live.push_back(fmt::format("{} {} -> {}", name, before.empty() ? "(none)" : before,
                                      value.empty() ? "(none)" : value));
    }
  }
  return plan;
}

void apply_live_settings(run_config& in_force, const run_config& next) {
  in_force.log_level = next.log_level;
  in_force.delivery.retry = next.delivery.retry;
  in_force.delivery.http.addresses = next.delivery.http.addresses;
  in_force.delivery.http.endpoints = next.delivery.http.endpoints;
  in_force.delivery.engine.scheduling = next.delivery.engine.scheduling;
  for (const auto& [name, value] : next.settings) {
    if (changes_live(name)) in_force.settings[name] = value;
  }
}

database_command_config parse_database_command(
    const std::vector<std::string>& args, const po::options_description& options,
    const po::positional_options_description& positional) {
  database_flags flags;
  po::options_description database_options;
  flags.add_to(database_options);
  po::options_description all;
  all.add(options).add(database_options).add(common_options());
  po::parsed_options parsed(&all);
  try {
    for (const auto& arg : args) refuse_placeholders(arg, "a command-line argument");
    parsed = po::command_line_parser(args).options(all).positional(positional).run();
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
  // The command's own options come from its command line only: a daemon's OUTBOXD_MAX_ATTEMPTS
  // or a shared config file's max-attempts must not become `policy set --max-attempts`. The
  // database settings are read like every command's: flags, OUTBOXD_* variables, --config file.
  po::parsed_options own(&all);
  std::vector<std::string> database_args;
  for (const auto& option : parsed.options) {
    const auto& name = option.string_key;
    if (name == "config" || database_options.find_nothrow(name, false) != nullptr) {
      for (const auto& value : option.value) database_args.push_back("--" + name + "=" + value);
    } else {
      own.options.push_back(option);
    }
  }
  try {
    po::variables_map values;
    po::store(own, values);
    po::notify(values);
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
  const auto read = read_settings(database_options, {database_args, process_environment()});
  try {
    return {.database = flags.resolve(),
            .log_level = check_log_level(flags.log_level),
            .log_format = check_log_format(flags.log_format)};
  } catch (const config_error& e) {
    throw read.relabel(e);
  }
}

po::options_description database_flag_options() {
  po::options_description options("database");
  database_flags{}.add_to(options);
  return options;
}

// The bound variables die with the temporary flags: these descriptions are for reading names,
// defaults and help texts only.
po::options_description run_flag_options() { return run_flags{}.describe(); }

po::options_description migrate_flag_options() { return migrate_flags{}.describe(); }

}  // namespace outboxd
