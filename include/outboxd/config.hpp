#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <chrono>
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
};

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
};

// Flags first, then OUTBOXD_* environment variables (OUTBOXD_POLL_INTERVAL for --poll-interval),
// then defaults. `args` excludes the program and subcommand names. Throws config_error.
run_config parse_run_config(const std::vector<std::string>& args);
migrate_config parse_migrate_config(const std::vector<std::string>& args);

// For commands defined in their own files (daemon/admin/): the shared database settings.
struct database_command_config {
  database_config database;
  std::string log_level = "info";
};
// Adds the shared database flags (--database-url, ...) to `options`, parses `args` against them
// and resolves the database settings. Only the database flags may come from OUTBOXD_* variables
// (flags win); the command's own options are flags only. Throws config_error.
database_command_config parse_database_command(
    const std::vector<std::string>& args, boost::program_options::options_description options,
    const boost::program_options::positional_options_description& positional);
// `options` and the shared database flags, as help prints them.
std::string database_command_usage(boost::program_options::options_description options);

// A whole number from min to max; the message names `setting`. Throws config_error.
int parse_count(const std::string& text, std::string_view setting, int min, int max);

// The option reference printed by `outboxd help`.
std::string run_usage();
std::string migrate_usage();

// "250ms", "5s", "2m", "1h"; a bare number is milliseconds. Throws config_error.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view setting);

}  // namespace outboxd
