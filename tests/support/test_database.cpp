#include "support/test_database.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <thread>

namespace outboxd::test {

std::string admin_database_url() {
  const char* url = std::getenv("OUTBOXD_TEST_DATABASE_URL");
  if (!url || !*url) {
    throw std::runtime_error(
        "OUTBOXD_TEST_DATABASE_URL is not set: this test needs PostgreSQL. Run scripts/test.sh, "
        "which starts a throwaway server and sets it.");
  }
  return url;
}

std::string with_database(const std::string& url, const std::string& database) {
  const auto scheme = url.find("://");
  if (scheme == std::string::npos) throw std::invalid_argument("expected a postgresql:// URL");
  const auto path = url.find('/', scheme + 3);
  const auto query = url.find('?', scheme + 3);
  const std::string base = url.substr(0, std::min(path, query));
  const std::string tail = query == std::string::npos ? "" : url.substr(query);
  return base + "/" + database + tail;
}

std::string read_text_file(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error("cannot read " + path);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

namespace {

std::string unique_database_name() {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  if (info) {
    for (char c : std::string(info->name()).substr(0, 30)) {
      name +=
          std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    }
  }
  return name;
}

}  // namespace

test_database::test_database() : test_database(options{}) {}

test_database::test_database(options opts) : name_(unique_database_name()) {
  const auto admin = admin_database_url();
  {
    sql_session server(admin);
    server.script("CREATE DATABASE " + name_);
  }
  url_ = with_database(admin, name_);
  session_ = std::make_unique<sql_session>(url_);
  if (opts.create_ferriskey_tables) {
    if (opts.iam_schema != "public") {
      session_->script("CREATE SCHEMA " + opts.iam_schema + ";");
    }
    session_->script("SET search_path TO " + opts.iam_schema + ";\n" +
                     read_text_file(OUTBOXD_FERRISKEY_FIXTURE) + "\nRESET search_path;");
  }
  if (opts.migrate) {
    const auto migrated =
        run_outboxd("migrate --iam-schema " + opts.iam_schema + " --database-url '" + url_ + "'");
    if (migrated.exit_code != 0) {
      throw std::runtime_error("outboxd migrate failed: " + migrated.output);
    }
  }
}

test_database::~test_database() {
  session_.reset();
  try {
    sql_session server(admin_database_url());
    server.script("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (const std::exception& e) {
    // A leftover database in a throwaway server is harmless; say so and go on.
    std::fprintf(stderr, "warning: could not drop %s: %s\n", name_.c_str(), e.what());
  }
}

command_result run_outboxd(const std::string& arguments) {
  // Without the suite's own OUTBOXD_TEST_* variables: outboxd refuses OUTBOXD_* variables that
  // are no setting of it.
  std::string command = "env";
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with("OUTBOXD_TEST_"))
      command += " -u " + std::string(text.substr(0, text.find('=')));
  }
  command += " " + std::string(OUTBOXD_BINARY) + " " + arguments + " 2>&1";
  command_result out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot start " + command);
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    out.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
                std::chrono::nanoseconds step) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

}  // namespace outboxd::test
