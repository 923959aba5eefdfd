#include "outboxd/config.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <cctype>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

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
void parse(const std::vector<std::string>& args, const po::options_description& options) {
  po::variables_map values;
  try {
    po::store(po::command_line_parser(args).options(options).run(), values);
    po::store(po::parse_environment(
                  options,
                  [&options](const std::string& variable) -> std::string {
                    if (!variable.starts_with(kEnvPrefix)) return {};
                    std::string name = variable.substr(kEnvPrefix.size());
                    for (auto& c : name) {
                      c = c == '_' ? '-'
                                   : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    }
                    return options.find_nothrow(name, false) ? name : "";
                  }),
              values);
    po::notify(values);
  } catch (const po::error& e) {
    throw config_error(e.what());
  }
}

int parse_count(const std::string& text, std::string_view setting, int min, int max) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    throw config_error(
        fmt::format("{} must be a whole number from {} to {}, not '{}'", setting, min, max, text));
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

  po::options_description describe() {
    po::options_description options("outboxd run");
    database.add_to(options);
    options.add_options()("poll-interval", po::value(&poll_interval)->default_value(poll_interval),
                          "look for outbox rows this often even without a notification")(
        "batch-size", po::value(&batch_size)->default_value(batch_size),
        "outbox rows claimed per dispatch transaction (1-10000)")(
        "reconnect-min", po::value(&reconnect_min)->default_value(reconnect_min),
        "first delay before reconnecting to PostgreSQL")(
        "reconnect-max", po::value(&reconnect_max)->default_value(reconnect_max),
        "longest delay between reconnection attempts")(
        "shutdown-timeout", po::value(&shutdown_timeout)->default_value(shutdown_timeout),
        "after SIGTERM, how long in-flight work may take before outboxd exits anyway");
    return options;
  }
};

struct migrate_flags {
  database_flags database;
  std::string adapter = "ferriskey";
  std::string adapter_file;
  std::string iam_schema = "public";

  po::options_description describe() {
    po::options_description options("outboxd migrate");
    database.add_to(options);
    options.add_options()(
        "adapter", po::value(&adapter)->default_value(adapter),
        "built-in adapter that defines outboxd.subscriptions over the IAM's tables")(
        "adapter-file", po::value(&adapter_file),
        "an adapter SQL file to use instead of a built-in one")(
        "iam-schema", po::value(&iam_schema)->default_value(iam_schema),
        "the schema holding the IAM's tables (FerrisKey's DATABASE_SCHEMA)");
    return options;
  }
};

std::string describe(po::options_description options) {
  std::ostringstream out;
  out << options;
  return out.str();
}

}  // namespace

pg::connection_options database_config::connection(std::string application_name) const {
  return {.url = url,
          .application_name = std::move(application_name),
          .connect_timeout = connect_timeout,
          .statement_timeout = statement_timeout};
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
  return out;
}

std::string run_usage() { return describe(run_flags{}.describe()); }

std::string migrate_usage() { return describe(migrate_flags{}.describe()); }

}  // namespace outboxd
