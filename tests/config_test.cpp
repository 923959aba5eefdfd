#include "outboxd/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>

#include "outboxd/cli.hpp"

namespace outboxd {
namespace {
using namespace std::chrono_literals;

// This test reads the process's environment as outboxd does: the suite's own OUTBOXD_TEST_*
// variables (the test database, unused here) are no setting of outboxd and would be refused.
[[maybe_unused]] const bool kTestVariablesRemoved = [] {
  std::vector<std::string> names;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with("OUTBOXD_TEST_")) names.emplace_back(text.substr(0, text.find('=')));
  }
  for (const auto& name : names) ::unsetenv(name.c_str());
  return true;
}();

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "outboxd_" + name + "_" + std::to_string(::getpid());
}

std::string error_of(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const config_error& e) {
    return e.what();
  }
  return "(accepted)";
}

// Sets an environment variable for one test.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~scoped_env() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(config, durations_take_the_usual_units) {
  EXPECT_EQ(parse_duration("250ms", "x"), 250ms);
  EXPECT_EQ(parse_duration("0", "x"), 0ms);
  EXPECT_EQ(parse_duration("7d", "x"), 7 * 24h);
  EXPECT_THROW(parse_duration("250", "x"), config_error);  // no unit: 250 what?
  EXPECT_THROW(parse_duration("5", "x"), config_error);
  EXPECT_THROW(parse_duration("5w", "x"), config_error);
  EXPECT_THROW(parse_duration("99999999999d", "x"), config_error);  // no overflow
  EXPECT_EQ(parse_duration("5s", "x"), 5s);
  EXPECT_EQ(parse_duration("2m", "x"), 2min);
  EXPECT_EQ(parse_duration("1h", "x"), 1h);
  EXPECT_THROW(parse_duration("5 s", "x"), config_error);
  EXPECT_THROW(parse_duration("-1s", "x"), config_error);
  EXPECT_THROW(parse_duration("soon", "x"), config_error);
  EXPECT_THROW(parse_duration("", "x"), config_error);
}

TEST(config, errors_name_the_setting) {
  try {
    parse_run_config({"--database-url", "x", "--poll-interval", "often"});
    FAIL() << "accepted a bad duration";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("--poll-interval"), std::string::npos) << e.what();
  }
}

TEST(config, flags_win_over_the_environment_and_the_environment_over_defaults) {
  scoped_env url("OUTBOXD_DATABASE_URL", "postgresql://from-env/db");
  scoped_env poll("OUTBOXD_POLL_INTERVAL", "5s");
  const auto from_env = parse_run_config({});
  EXPECT_EQ(from_env.database.url, "postgresql://from-env/db");
  EXPECT_EQ(from_env.poll_interval, 5s);
  EXPECT_EQ(from_env.batch_size, 500);  // default

  const auto from_flags =
      parse_run_config({"--database-url", "postgresql://from-flag/db", "--poll-interval", "250ms"});
  EXPECT_EQ(from_flags.database.url, "postgresql://from-flag/db");
  EXPECT_EQ(from_flags.poll_interval, 250ms);
}

TEST(config, the_database_url_can_come_from_a_file_and_is_trimmed) {
  const std::string path = ::testing::TempDir() + "outboxd_dsn_" + std::to_string(::getpid());
  std::ofstream(path) << "postgresql://from-file/db\n";
  const auto config = parse_run_config({"--database-url-file", path});
  EXPECT_EQ(config.database.url, "postgresql://from-file/db");
  EXPECT_THROW(parse_run_config({"--database-url-file", path, "--database-url", "x"}),
               config_error);
  EXPECT_THROW(parse_run_config({"--database-url-file", path + ".missing"}), config_error);
  std::remove(path.c_str());
}

TEST(config, a_missing_database_url_is_an_error_that_says_what_to_set) {
  try {
    parse_run_config({});
    FAIL() << "accepted no database";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("OUTBOXD_DATABASE_URL"), std::string::npos);
  }
}

TEST(config, batch_size_is_bounded_at_both_ends) {
  const std::vector<std::string> base{"--database-url", "x", "--batch-size"};
  auto with = [&](const std::string& n) {
    auto args = base;
    args.push_back(n);
    return args;
  };
  EXPECT_EQ(parse_run_config(with("1")).batch_size, 1);
  EXPECT_EQ(parse_run_config(with("10000")).batch_size, 10'000);
  EXPECT_THROW(parse_run_config(with("0")), config_error);
  EXPECT_THROW(parse_run_config(with("10001")), config_error);
  EXPECT_THROW(parse_run_config(with("ten")), config_error);
}

TEST(config, poll_interval_and_reconnect_delays_are_bounded) {
  const std::vector<std::string> url{"--database-url", "x"};
  auto with = [&](std::vector<std::string> extra) {
    auto args = url;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  EXPECT_EQ(parse_run_config(with({"--poll-interval", "10ms"})).poll_interval, 10ms);
  EXPECT_EQ(parse_run_config(with({"--poll-interval", "1h"})).poll_interval, 1h);
  EXPECT_THROW(parse_run_config(with({"--poll-interval", "9ms"})), config_error);
  EXPECT_THROW(parse_run_config(with({"--poll-interval", "61m"})), config_error);
  EXPECT_THROW(parse_run_config(with({"--reconnect-min", "5s", "--reconnect-max", "1s"})),
               config_error);
}

TEST(config, unknown_options_and_log_levels_are_refused) {
  EXPECT_THROW(parse_run_config({"--database-url", "x", "--no-such-option", "1"}), config_error);
  EXPECT_THROW(parse_run_config({"--database-url", "x", "--log-level", "loud"}), config_error);
  EXPECT_THROW(parse_migrate_config({"--database-url", "x", "--iam-schema", ""}), config_error);
}

TEST(config, migrate_waits_and_deadlines_have_safe_defaults_and_can_be_set) {
  const auto defaults = parse_migrate_config({"--database-url", "x"});
  EXPECT_EQ(defaults.lock_wait, 60s);
  EXPECT_EQ(defaults.lock_timeout, 5s);
  EXPECT_EQ(defaults.migrate_timeout, 1h);
  const auto set = parse_migrate_config({"--database-url", "x", "--lock-wait", "2s",
                                         "--lock-timeout", "250ms", "--migrate-timeout", "10m"});
  EXPECT_EQ(set.lock_wait, 2s);
  EXPECT_EQ(set.lock_timeout, 250ms);
  EXPECT_EQ(set.migrate_timeout, 10min);
  EXPECT_THROW(parse_migrate_config({"--database-url", "x", "--lock-timeout", "0ms"}),
               config_error);
  EXPECT_THROW(parse_migrate_config({"--database-url", "x", "--migrate-timeout", "500ms"}),
               config_error);
}

TEST(config, allowed_destination_ranges_come_from_flags_or_the_environment) {
  const auto allows = [](const run_config& c, const char* address) {
    return c.delivery.http.addresses.permits(boost::asio::ip::make_address(address));
  };
  const auto none = parse_run_config({"--database-url", "x"});
  EXPECT_FALSE(allows(none, "127.0.0.1"));
  EXPECT_TRUE(allows(none, "93.184.216.34"));  // public: always

  const auto flags = parse_run_config(
      {"--database-url", "x", "--allow-cidr", "127.0.0.0/8", "--allow-cidr", "10.1.0.0/16"});
  EXPECT_TRUE(allows(flags, "127.0.0.1"));
  EXPECT_TRUE(allows(flags, "10.1.255.255"));
  EXPECT_FALSE(allows(flags, "10.2.0.1"));

  scoped_env env("OUTBOXD_ALLOW_CIDRS", "192.168.0.0/16, fd00::/8");
  const auto from_env = parse_run_config({"--database-url", "x"});
  EXPECT_TRUE(allows(from_env, "192.168.1.1"));
  EXPECT_TRUE(allows(from_env, "fd00::1"));
  EXPECT_FALSE(allows(from_env, "127.0.0.1"));
  // Flags win over the environment.
  const auto both = parse_run_config({"--database-url", "x", "--allow-cidr", "127.0.0.0/8"});
  EXPECT_TRUE(allows(both, "127.0.0.1"));
  EXPECT_FALSE(allows(both, "192.168.1.1"));

  EXPECT_THROW(parse_run_config({"--database-url", "x", "--allow-cidr", "10.0.0.1/8"}),
               config_error);  // host bits set
  EXPECT_THROW(parse_run_config({"--database-url", "x", "--allow-cidr", "10.0.0.0/33"}),
               config_error);
}

TEST(config, delivery_settings_are_validated) {
  const auto with = [](std::vector<std::string> extra) {
    std::vector<std::string> args{"--database-url", "x"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_run_config(args);
  };
  const auto defaults = with({});
  EXPECT_EQ(defaults.delivery.http.connect_timeout, 5s);
  EXPECT_EQ(defaults.delivery.http.request_timeout, 15s);
  EXPECT_EQ(defaults.delivery.retry.max_attempts, 10);
  EXPECT_EQ(defaults.delivery.retry.delays.size(), 9u);
  EXPECT_EQ(defaults.delivery.retry.delays.back(), 24h);

  EXPECT_EQ(with({"--retry-schedule", "1s,10s", "--max-attempts", "3"}).delivery.retry.delays,
            (std::vector<std::chrono::milliseconds>{1s, 10s}));
  // The lease must hold a whole request and its outcome's write (statement timeout + 2 s client
  // slack) with 5 s to spare: exactly that is accepted, a millisecond less is not.
  EXPECT_EQ(defaults.delivery.lease.duration, 60s);
  EXPECT_EQ(defaults.delivery.lease.write_bound(), 32s);
  EXPECT_EQ(defaults.delivery.max_expired_attempts, 5);
  const auto at_bound =
      with({"--http-request-timeout", "20s", "--statement-timeout", "10s", "--lease", "37s"});
  EXPECT_EQ(at_bound.delivery.lease.duration, 37s);
  EXPECT_EQ(at_bound.delivery.lease.request_timeout, 20s);
  try {
    with({"--http-request-timeout", "20s", "--statement-timeout", "10s", "--lease", "36999ms"});
    ADD_FAILURE() << "a lease that cannot hold its request and write was accepted";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("--lease"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--statement-timeout"), std::string::npos) << e.what();
  }
  // The default lease with a longer statement timeout no longer holds: refused, not trusted.
  EXPECT_THROW(with({"--statement-timeout", "50s"}), config_error);
  EXPECT_EQ(with({"--max-lease-expiries", "1"}).delivery.max_expired_attempts, 1);
  EXPECT_THROW(with({"--max-lease-expiries", "0"}), config_error);
  EXPECT_THROW(with({"--http-connect-timeout", "20s"}), config_error);  // above request timeout
  EXPECT_EQ(with({"--max-response-bytes", "0"}).delivery.http.max_response_bytes, 0u);
  EXPECT_EQ(with({"--max-response-bytes", "1048576"}).delivery.http.max_response_bytes, 1048576u);
  EXPECT_THROW(with({"--max-response-bytes", "1048577"}), config_error);
  EXPECT_THROW(with({"--max-attempts", "0"}), config_error);
  EXPECT_THROW(with({"--max-in-flight", "0"}), config_error);
  EXPECT_THROW(with({"--ca-file", "/nonexistent/ca.pem"}), config_error);
}

TEST(config, a_client_certificate_needs_its_key_and_both_must_be_readable) {
  const auto with = [](std::vector<std::string> extra) {
    std::vector<std::string> args{"--database-url", "x"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_run_config(args).delivery.http;
  };
  const auto cert = temp_path("client_cert.pem");
  const auto key = temp_path("client_key.pem");
  std::ofstream(cert) << "certificate";
  std::ofstream(key) << "key";
  const auto both = with({"--client-cert", cert, "--client-key", key});
  EXPECT_EQ(both.client_cert_file, cert);
  EXPECT_EQ(both.client_key_file, key);
  EXPECT_EQ(with({}).client_cert_file, "");
  EXPECT_NE(error_of([&] {
              with({"--client-cert", cert});
            }).find("set both or neither"),
            std::string::npos);
  EXPECT_NE(error_of([&] { with({"--client-key", key}); }).find("--client-key"), std::string::npos);
  EXPECT_NE(error_of([&] {
              with({"--client-cert", cert, "--client-key", "/nonexistent/key"});
            }).find("cannot read /nonexistent/key"),
            std::string::npos);
  std::remove(cert.c_str());
  std::remove(key.c_str());
}

TEST(config, circuit_breaker_settings_are_validated_and_come_from_flags_or_the_environment) {
  const auto with = [](std::vector<std::string> extra) {
    std::vector<std::string> args{"--database-url", "x"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_run_config(args).delivery.engine.scheduling.breaker;
  };
  const auto defaults = with({});
  EXPECT_EQ(defaults.min_failures, 5);
  EXPECT_DOUBLE_EQ(defaults.failure_ratio, 0.5);
  EXPECT_EQ(defaults.window, 30s);
  EXPECT_EQ(defaults.cooldown, 30s);

  const auto set =
      with({"--circuit-breaker-failures", "3", "--circuit-breaker-failure-ratio", "0.25",
            "--circuit-breaker-window", "1s", "--circuit-breaker-cooldown", "2m"});
  EXPECT_EQ(set.min_failures, 3);
  EXPECT_DOUBLE_EQ(set.failure_ratio, 0.25);
  EXPECT_EQ(set.window, 1s);
  EXPECT_EQ(set.cooldown, 2min);
  EXPECT_DOUBLE_EQ(with({"--circuit-breaker-failure-ratio", "1"}).failure_ratio, 1.0);
  {
    scoped_env ratio("OUTBOXD_CIRCUIT_BREAKER_FAILURE_RATIO", "0.75");
    scoped_env window("OUTBOXD_CIRCUIT_BREAKER_WINDOW", "1m");
    const auto from_env = with({});
    EXPECT_DOUBLE_EQ(from_env.failure_ratio, 0.75);
    EXPECT_EQ(from_env.window, 1min);
  }

  const auto refused = [&](std::vector<std::string> extra, const std::string& flag) {
    try {
      with(extra);
      ADD_FAILURE() << "accepted " << extra[1];
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find(flag), std::string::npos) << e.what();
    }
  };
  for (const std::string ratio : {"0", "-0.5", "1.01", "2", "half", "0.5x", "", "nan", "inf"}) {
    refused({"--circuit-breaker-failure-ratio", ratio}, "--circuit-breaker-failure-ratio");
  }
  refused({"--circuit-breaker-window", "999ms"}, "--circuit-breaker-window");
  refused({"--circuit-breaker-window", "0"}, "--circuit-breaker-window");
  refused({"--circuit-breaker-failures", "0"}, "--circuit-breaker-failures");
}

TEST(config, retention_reporting_and_secret_grace_have_defaults_and_can_be_set) {
  const auto defaults = parse_run_config({"--database-url", "x"});
  EXPECT_EQ(defaults.retention, 168h);
  EXPECT_EQ(defaults.retention_interval, 1min);
  EXPECT_FALSE(defaults.report_to_iam);
  EXPECT_EQ(defaults.delivery.secret_grace, 24h);

  const auto set =
      parse_run_config({"--database-url", "x", "--retention", "0", "--retention-interval", "10s",
                        "--report-to-iam", "--secret-grace", "30m"});
  EXPECT_EQ(set.retention, 0ms);
  EXPECT_EQ(set.retention_interval, 10s);
  EXPECT_TRUE(set.report_to_iam);
  EXPECT_EQ(set.delivery.secret_grace, 30min);

  scoped_env report("OUTBOXD_REPORT_TO_IAM", "true");
  scoped_env retention("OUTBOXD_RETENTION", "2h");
  const auto from_env = parse_run_config({"--database-url", "x"});
  EXPECT_TRUE(from_env.report_to_iam);
  EXPECT_EQ(from_env.retention, 2h);

  EXPECT_THROW(parse_run_config({"--database-url", "x", "--retention-interval", "10ms"}),
               config_error);
  EXPECT_THROW(parse_run_config({"--database-url", "x", "--secret-grace", "soon"}), config_error);
}

TEST(config, an_invalid_value_is_named_as_the_operator_set_it) {
  {
    scoped_env poll("OUTBOXD_POLL_INTERVAL", "5");
    const auto message = error_of([] { parse_run_config({"--database-url", "x"}); });
    EXPECT_EQ(message.rfind("OUTBOXD_POLL_INTERVAL=5: must be a duration", 0), 0u) << message;
  }
  const auto flag = error_of([] {
    parse_run_config({"--database-url", "x", "--poll-interval", "5"});
  });
  EXPECT_EQ(flag.rfind("--poll-interval 5: must be a duration", 0), 0u) << flag;
  const auto equals = error_of([] {
    parse_run_config({"--database-url", "x", "--max-attempts=0"});
  });
  EXPECT_EQ(equals.rfind("--max-attempts 0: must be a whole number", 0), 0u) << equals;

  const auto file = temp_path("bad.conf");
  std::ofstream(file) << "# a comment\npoll-interval = 5\n";
  const auto from_file = error_of([&] {
    parse_run_config({"--database-url", "x", "--config", file});
  });
  EXPECT_EQ(from_file.rfind("poll-interval in " + file + ": must be a duration", 0), 0u)
      << from_file;
  std::remove(file.c_str());
}

TEST(config, the_database_url_is_never_shown_in_a_message) {
  scoped_env url("OUTBOXD_DATABASE_URL", "postgresql://app:hunter2@db/iam");
  scoped_env file("OUTBOXD_DATABASE_URL_FILE", "/run/secret");
  const auto message = error_of([] { parse_run_config({}); });
  EXPECT_NE(message.find("--database-url"), std::string::npos) << message;
  EXPECT_EQ(message.find("hunter2"), std::string::npos) << message;
  const auto flag = error_of([] {
    parse_run_config({"--database-url", "postgresql://app:hunter2@db/iam", "--lease", "1s"});
  });
  EXPECT_EQ(flag.find("hunter2"), std::string::npos) << flag;
}

TEST(config, flags_win_over_the_environment_which_wins_over_the_file_which_wins_over_defaults) {
  const auto file = temp_path("precedence.conf");
  std::ofstream(file) << "poll-interval = 2s\nbatch-size = 7\nmax-attempts = 4\n"
                         "allow-cidr = 10.0.0.0/8\n";
  scoped_env batch("OUTBOXD_BATCH_SIZE", "8");
  scoped_env attempts("OUTBOXD_MAX_ATTEMPTS", "5");
  const auto config =
      parse_run_config({"--database-url", "x", "--config", file, "--max-attempts", "6"});
  EXPECT_EQ(config.poll_interval, 2s);                   // file
  EXPECT_EQ(config.batch_size, 8);                       // environment over file
  EXPECT_EQ(config.delivery.retry.max_attempts, 6);      // flag over both
  EXPECT_EQ(config.delivery.http.request_timeout, 15s);  // default
  EXPECT_TRUE(config.delivery.http.addresses.permits(boost::asio::ip::make_address("10.1.2.3")));
  // A repeated setting is not merged across sources: the flag's ranges replace the file's.
  const auto flag_ranges =
      parse_run_config({"--database-url", "x", "--config", file, "--allow-cidr", "127.0.0.0/8"});
  EXPECT_FALSE(
      flag_ranges.delivery.http.addresses.permits(boost::asio::ip::make_address("10.1.2.3")));
  {
    scoped_env config_env("OUTBOXD_CONFIG", file.c_str());
    EXPECT_EQ(parse_run_config({"--database-url", "x"}).poll_interval, 2s);
  }
  std::remove(file.c_str());
}

TEST(config, unknown_variables_and_file_entries_are_refused_and_other_commands_are_accepted) {
  {
    scoped_env typo("OUTBOXD_POLL_INTERVALL", "1s");
    const auto message = error_of([] { parse_run_config({"--database-url", "x"}); });
    EXPECT_NE(message.find("OUTBOXD_POLL_INTERVALL"), std::string::npos) << message;
  }
  {
    // One environment for the migration job and the daemon.
    scoped_env adapter("OUTBOXD_ADAPTER", "ferriskey");
    scoped_env poll("OUTBOXD_POLL_INTERVAL", "1s");
    EXPECT_NO_THROW(parse_run_config({"--database-url", "x"}));
    EXPECT_NO_THROW(parse_migrate_config({"--database-url", "x"}));
  }
  const auto file = temp_path("unknown.conf");
  std::ofstream(file) << "iam-schema = iam\npoll-intervall = 1s\n";
  const auto message = error_of([&] {
    parse_run_config({"--database-url", "x", "--config", file});
  });
  EXPECT_NE(message.find("poll-intervall in " + file), std::string::npos) << message;
  std::ofstream(file) << "iam-schema = iam\npoll-interval = 1s\n";
  EXPECT_EQ(parse_migrate_config({"--database-url", "x", "--config", file}).iam_schema, "iam");
  EXPECT_NO_THROW(parse_run_config({"--database-url", "x", "--config", file}));
  std::remove(file.c_str());
  EXPECT_NE(error_of([&] {
              parse_run_config({"--database-url", "x", "--config", file});
            }).find("cannot read"),
            std::string::npos);
}

TEST(config, every_setting_has_a_variable_and_every_default_duration_a_unit) {
  for (const auto& entry : commands()) {
    if (!entry.options) continue;
    const auto options = entry.options();
    for (const auto& option : options.options()) {
      // Each setting can be given by variable: parse a valid value of each from the environment.
      std::string variable = "OUTBOXD_";
      for (const char c : option->long_name()) {
        variable += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      }
      EXPECT_TRUE(every_setting_name().contains(option->long_name())) << variable;
      const auto shown = option->format_parameter();
      const auto equals = shown.find("(=");
      if (equals == std::string::npos) continue;
      const auto value = shown.substr(equals + 2, shown.size() - equals - 3);
      const bool numeric = !value.empty() && std::isdigit(static_cast<unsigned char>(value[0]));
      if (numeric && value.find_first_not_of("0123456789") != std::string::npos &&
          value.find('.') == std::string::npos && value.find(',') == std::string::npos) {
        EXPECT_NO_THROW(parse_duration(value, option->long_name())) << option->long_name();
      }
    }
  }
}

TEST(config, a_reload_tells_live_settings_from_those_that_need_a_restart) {
  const auto before = parse_run_config({"--database-url", "x"});
  const auto after = parse_run_config({"--database-url", "x", "--max-attempts", "1",
                                       "--retry-schedule", "1s", "--poll-interval", "2s"});
  const auto plan = plan_reload(before, after);
  EXPECT_EQ(plan.restart, std::vector<std::string>{"poll-interval"});
  ASSERT_EQ(plan.live.size(), 2u);
  EXPECT_EQ(plan.live[0], "max-attempts 10 -> 1");
  EXPECT_EQ(plan.live[1], "retry-schedule 5s,5m,30m,2h,5h,10h,14h,20h,24h -> 1s");
  auto in_force = before;
  apply_live_settings(in_force, after);
  EXPECT_EQ(in_force.delivery.retry.max_attempts, 1);
  EXPECT_EQ(in_force.poll_interval, 1s);  // needs a restart: unchanged
  EXPECT_TRUE(plan_reload(in_force, after).live.empty());
  EXPECT_EQ(plan_reload(in_force, after).restart, std::vector<std::string>{"poll-interval"});
}

// Found by the config fuzz target: a config file line starting with a NUL byte made the whole
// message an empty C string ("outboxd: fatal: " and nothing else).
TEST(config, a_setting_name_with_control_bytes_is_shown_escaped) {
  static constexpr char kLine[] = "\0poll\x1b[2J = 1s\n";
  const auto path = temp_path("control_bytes.conf");
  std::ofstream(path, std::ios::binary) << std::string_view(kLine, sizeof(kLine) - 1);
  const auto message = error_of([&] {
    load_run_config({{"--config", path}, {"OUTBOXD_DATABASE_URL=postgresql://x@127.0.0.1/x"}});
  });
  EXPECT_NE(message.find("\\x00poll\\x1b[2J in "), std::string::npos) << message;
  std::remove(path.c_str());
}

// Found by the config fuzz target: the variable OUTBOXD_ (no name after the prefix) escaped as
// Boost's "option is ambiguous and matches 'adapter', ..." instead of a config_error.
TEST(config, the_bare_prefix_variable_is_refused_as_naming_no_setting) {
  const auto message = error_of([] {
    load_migrate_config({{}, {"OUTBOXD_DATABASE_URL=postgresql://x@127.0.0.1/x", "OUTBOXD_=1"}});
  });
  EXPECT_NE(message.find("OUTBOXD_: no outboxd command has a setting"), std::string::npos)
      << message;
}

// Found by the config fuzz target (a timeout): Boost.ProgramOptions never finishes the message of
// an error whose text holds one of its own placeholders, so outboxd hung at start.
TEST(config, text_holding_a_boost_message_placeholder_is_refused_instead_of_hanging) {
  const std::string url = "OUTBOXD_DATABASE_URL=postgresql://x@127.0.0.1/x";
  EXPECT_NE(error_of([&] {
              load_run_config({{"--allow-=%canonical_option%"}, {url}});
            }).find("a command-line argument: must not hold %canonical_option%"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_run_config({{}, {url, "OUTBOXD_REPORT_TO_IAM=%value%"}});
            }).find("OUTBOXD_REPORT_TO_IAM: must not hold %value%"),
            std::string::npos);
  const auto path = temp_path("placeholder.conf");
  std::ofstream(path) << "report-to-iam = %value%\n";
  EXPECT_NE(error_of([&] {
              load_run_config({{"--config", path}, {url}});
            }).find(path + ": must not hold %value%"),
            std::string::npos);
  std::remove(path.c_str());
}

TEST(config, https_only_and_allowed_ports_default_to_anything_and_reload_live) {
  const auto defaults = parse_run_config({"--database-url", "x"});
  EXPECT_FALSE(defaults.delivery.http.endpoints.https_only());
  EXPECT_TRUE(defaults.delivery.http.endpoints.allowed_ports().empty());

  const auto set =
      parse_run_config({"--database-url", "x", "--https-only", "--allow-ports", "443, 8000-8999"});
  EXPECT_TRUE(set.delivery.http.endpoints.https_only());
  EXPECT_EQ(set.delivery.http.endpoints.allowed_ports(),
            (std::vector<http::port_range>{{443, 443}, {8000, 8999}}));

  scoped_env env("OUTBOXD_ALLOW_PORTS", "8443");
  const auto from_env = parse_run_config({"--database-url", "x"});
  EXPECT_EQ(from_env.delivery.http.endpoints.allowed_ports(),
            (std::vector<http::port_range>{{8443, 8443}}));

  for (const char* bad : {"0", "65536", "80-", "-80", "90-80", "80,,443", "http", "443;8443"}) {
    try {
      parse_run_config({"--database-url", "x", "--allow-ports", bad});
      ADD_FAILURE() << bad << " was accepted";
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find("--allow-ports"), std::string::npos) << e.what();
    }
  }

  const auto plan = plan_reload(defaults, set);
  EXPECT_TRUE(plan.restart.empty());
  EXPECT_EQ(plan.live.size(), 2u);
  auto in_force = defaults;
  apply_live_settings(in_force, set);
  EXPECT_TRUE(in_force.delivery.http.endpoints.https_only());
  EXPECT_EQ(in_force.delivery.http.endpoints.allowed_ports().size(), 2u);
}

TEST(config, dns_and_idle_connection_settings_have_defaults_and_bounds) {
  const auto with = [](std::vector<std::string> extra) {
    std::vector<std::string> args{"--database-url", "x"};
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_run_config(args).delivery.http;
  };
  const auto defaults = with({});
  EXPECT_EQ(defaults.dns.threads, 4u);
  EXPECT_EQ(defaults.dns.timeout, 5s);
  EXPECT_EQ(defaults.dns.cache_ttl, 30s);
  EXPECT_EQ(defaults.max_idle_connections, 256u);
  EXPECT_EQ(defaults.idle_timeout, 30s);

  const auto set = with({"--dns-threads", "64", "--dns-timeout", "10ms", "--dns-cache-ttl", "0",
                         "--max-idle-connections", "0", "--idle-connection-timeout", "1h"});
  EXPECT_EQ(set.dns.threads, 64u);
  EXPECT_EQ(set.dns.timeout, 10ms);
  EXPECT_EQ(set.dns.cache_ttl, 0ms);
  EXPECT_EQ(set.max_idle_connections, 0u);
  EXPECT_EQ(set.idle_timeout, 1h);

  EXPECT_THROW(with({"--dns-threads", "0"}), config_error);
  EXPECT_THROW(with({"--dns-threads", "65"}), config_error);
  EXPECT_THROW(with({"--dns-timeout", "9ms"}), config_error);
  EXPECT_THROW(with({"--dns-timeout", "61s"}), config_error);
  EXPECT_THROW(with({"--dns-cache-ttl", "2h"}), config_error);
  EXPECT_THROW(with({"--max-idle-connections", "100001"}), config_error);
  EXPECT_THROW(with({"--idle-connection-timeout", "0"}), config_error);
  try {
    with({"--idle-connection-timeout", "5ms"});
    ADD_FAILURE() << "accepted";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("--idle-connection-timeout"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace outboxd
