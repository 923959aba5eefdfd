#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "outboxd/backoff.hpp"
#include "outboxd/deliverer.hpp"
#include "outboxd/delivery_store.hpp"
#include "outboxd/http/client.hpp"
#include "outboxd/pg/connection.hpp"
#include "outboxd/retry_policy.hpp"

namespace boost::program_options {
class options_description;
class positional_options_description;
}  // namespace boost::program_options

namespace outboxd {

// A setting an operator got wrong; the message names the setting and what is accepted.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  // One setting's problem: `setting` is its flag ("--poll-interval"), `problem` what is wrong
  // ("must be ..."). read_settings' callers relabel it with what the operator actually set
  // (settings::relabel): "OUTBOXD_POLL_INTERVAL=5: must be ...".
  config_error(std::string setting, std::string problem);
  const std::string& setting() const { return setting_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string setting_;
  std::string problem_;
};

// What one command's settings are read from, in this order of precedence: flags, OUTBOXD_*
// environment variables, the --config file (OUTBOXD_CONFIG), defaults. The environment is taken
// once at start (a process's environment cannot change from outside it); the file is read again
// each time the settings are (SIGHUP).
struct settings_input {
  std::vector<std::string> args;         // the command line after the command's name
  std::vector<std::string> environment;  // "NAME=value"
};
// This process's OUTBOXD_* variables.
std::vector<std::string> process_environment();

// Where one setting's value came from, as the operator wrote it.
struct setting_source {
  enum class kind { default_value, command_line, environment, file };
  kind from = kind::default_value;
  std::string label;  // "--poll-interval 5", "OUTBOXD_POLL_INTERVAL=5", "poll-interval in FILE"
};

// The settings of one command once read: the values are in the variables the options are bound
// to (po::value(&member)); this keeps where each came from and its text.
class settings {
 public:
  // "--poll-interval" or "poll-interval" → what the operator set, for messages: the flag and
  // its value, the variable and its value, the setting in the file, or the default. Secrets
  // (the database URL) are named, never shown.
  std::string label(std::string_view setting) const;
  // e with its setting replaced by label(setting); other errors unchanged.
  config_error relabel(const config_error& e) const;
  // Every setting's value as text ("" when unset), multiple values joined by commas; for
  // telling what a reload changed.
  const std::map<std::string, std::string>& values() const { return values_; }
  const std::string& config_file() const { return config_file_; }

 private:
  friend settings read_settings(const boost::program_options::options_description&,
                                const settings_input&);
  std::map<std::string, setting_source> sources_;
  std::map<std::string, std::string> values_;
  std::string config_file_;
};

// The options every command has besides its own: --config FILE and --help.
boost::program_options::options_description common_options();

// Reads one command's settings into the variables `options` are bound to: flags, then the
// environment, then the --config file, then defaults. An OUTBOXD_* variable or file entry that
// is a setting of another command is accepted and unused (one environment serves `migrate` and
// `run`); one that names no setting of any command (every_setting_name()) is refused. Throws
// config_error.
settings read_settings(const boost::program_options::options_description& options,
                       const settings_input& input);

struct database_config {
  std::string url;  // from --database-url, OUTBOXD_DATABASE_URL or a file; never logged
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds statement_timeout{30'000};

  // Every session of one daemon shares `outage`, so an outage is reported once for all of them.
  pg::connection_options connection(std::string application_name,
                                    std::shared_ptr<pg::outage_log> outage = nullptr) const;
};

// How deliveries are sent: HTTP, retries, limits.
struct delivery_config {
  http::client_options http;
  retry_options retry;
  deliverer_options engine;      // claim batch, payload bound, scheduler limits, breaker
  lease_terms lease;             // how long a claim holds a delivery, and what it must cover
  int max_expired_attempts = 5;  // leases that may expire before a delivery is dead (crash_loop)
  std::string instance_id;       // leased_by; default host:pid
  // How long a webhook's previous secret still signs beside its new one, from when the change is
  // first seen.
  std::chrono::milliseconds secret_grace{std::chrono::hours(24)};
};

struct run_config {
  database_config database;
  std::chrono::milliseconds poll_interval{1000};
  int batch_size = 500;
  backoff_options reconnect;
  std::chrono::milliseconds shutdown_timeout{30'000};
  std::string log_level = "info";
  std::string log_format = "text";  // or "json" (setup_logging)
  delivery_config delivery;
  // The admin HTTP server's address (metrics, health); none when --admin-address is off.
  std::optional<boost::asio::ip::tcp::endpoint> admin_address;
  // How often the backlog gauges are read from the database.
  std::chrono::milliseconds metrics_sample_interval{5000};
  // Finished deliveries, their attempts and fanned-out events older than this are purged; 0 keeps
  // everything.
  std::chrono::milliseconds retention{std::chrono::hours(168)};
  std::chrono::milliseconds retention_interval{std::chrono::minutes(1)};
  bool report_to_iam = false;  // write each webhook's last delivery into the IAM's row
  // Every setting's text as read (settings::values()), so a reload can tell what changed.
  std::map<std::string, std::string> settings;
};

struct migrate_config {
  database_config database;
  std::string adapter = "ferriskey";
  std::string adapter_file;  // wins over adapter when set
  std::string iam_schema = "public";
  std::chrono::milliseconds lock_wait{60'000};   // for another migrate holding the lock
  std::chrono::milliseconds lock_timeout{5000};  // of each DDL statement
  std::chrono::milliseconds migrate_timeout{std::chrono::hours(1)};
  std::string log_level = "info";
  std::string log_format = "text";  // or "json" (setup_logging)
};

// Flags first, then OUTBOXD_* environment variables (OUTBOXD_POLL_INTERVAL for --poll-interval),
// then the --config file, then defaults. Throws config_error naming what the operator set.
run_config load_run_config(const settings_input& input);
migrate_config load_migrate_config(const settings_input& input);
// The same with this process's environment; `args` excludes the program and command names.
run_config parse_run_config(const std::vector<std::string>& args);
migrate_config parse_migrate_config(const std::vector<std::string>& args);

// For commands defined in their own files (daemon/admin/): the shared database settings.
struct database_command_config {
  database_config database;
  std::string log_level = "info";
  std::string log_format = "text";
};
// Parses `args` against the command's own `options` (and `positional`) and the shared database
// settings. The command's own options come from its command line only; the database settings
// also from OUTBOXD_* variables and the --config file, like every command's. Throws config_error.
database_command_config parse_database_command(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options,
    const boost::program_options::positional_options_description& positional);
// The shared database settings (--database-url, ...), as --help and the docs list them.
boost::program_options::options_description database_flag_options();

// A whole number from min to max; the message names `setting`. Throws config_error.
int parse_count(const std::string& text, std::string_view setting, int min, int max);
// What a reload (SIGHUP) found changed between the settings in force and those just read.
struct reload_plan {
  std::vector<std::string> live;     // applied at once: "max-attempts 10 -> 1"
  std::vector<std::string> restart;  // names of changed settings that need a restart
};
// The settings of `outboxd run` that apply without a restart: log level, limits in flight,
// retry schedule and attempts, allowed address ranges, https-only and allowed ports, circuit
// breaker.
bool changes_live(std::string_view setting);
reload_plan plan_reload(const run_config& in_force, const run_config& next);
// Copies next's live settings into in_force (the rest stays as started).
void apply_live_settings(run_config& in_force, const run_config& next);

// Each command's own options (common_options() not included), for --help and the docs.
boost::program_options::options_description run_flag_options();
boost::program_options::options_description migrate_flag_options();

// "250ms", "5s", "2m", "1h", "7d", or "0". A number without a unit is refused: "5" is not
// guessed to be milliseconds. Throws config_error naming `setting`.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view setting);

}  // namespace outboxd
