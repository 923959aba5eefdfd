#include "outboxd/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

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

}  // namespace
}  // namespace outboxd
