#include "outboxd/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <cstdlib>
#include <fstream>

namespace outboxd {
namespace {
using namespace std::chrono_literals;

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
  EXPECT_EQ(parse_duration("250", "x"), 250ms);
  EXPECT_EQ(parse_duration("5s", "x"), 5s);
  EXPECT_EQ(parse_duration("2m", "x"), 2min);
  EXPECT_EQ(parse_duration("1h", "x"), 1h);
  EXPECT_THROW(parse_duration("5 s", "x"), config_error);
  EXPECT_THROW(parse_duration("-1s", "x"), config_error);
  EXPECT_THROW(parse_duration("soon", "x"), config_error);
  EXPECT_THROW(parse_duration("5d", "x"), config_error);
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

}  // namespace
}  // namespace outboxd
