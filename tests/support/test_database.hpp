#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "support/sql_session.hpp"

namespace outboxd::test {

// The server scripts/test.sh starts; tests that need it fail (never skip) without it.
std::string admin_database_url();

// A fresh database for one test on the test server, dropped at the end. Created with FerrisKey's
// tables (tests/fixtures) in `iam_schema`, and, unless told otherwise, migrated by the real
// `outboxd migrate` binary.
class test_database {
 public:
  struct options {
    bool create_ferriskey_tables = true;
    std::string iam_schema = "public";
    bool migrate = true;
  };

  test_database();
  explicit test_database(options opts);
  ~test_database();
  test_database(const test_database&) = delete;
  test_database& operator=(const test_database&) = delete;

  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  sql_session& sql() { return *session_; }

 private:
  std::string name_;
  std::string url_;
  std::unique_ptr<sql_session> session_;
};

// A whole file's text; throws std::runtime_error if it cannot be read.
std::string read_text_file(const std::string& path);

// Replaces the database name in a postgresql:// URL.
std::string with_database(const std::string& url, const std::string& database);

// Runs the outboxd binary with these arguments; returns its exit code and its stderr+stdout.
struct command_result {
  int exit_code = -1;
  std::string output;
};
// The binary through the shell (arguments are shell words), with the test's environment less
// its OUTBOXD_TEST_* variables.
command_result run_outboxd(const std::string& arguments);

// Waits until `condition` holds, checking every `step`, for at most `timeout`.
bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::nanoseconds step = std::chrono::milliseconds(5));

}  // namespace outboxd::test
