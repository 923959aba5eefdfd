#include "support/daemon_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "support/sanitizer_report.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {

namespace {

// The test's environment without the test suite's own OUTBOXD_TEST_* variables (they are no
// setting of outboxd, which refuses unknown OUTBOXD_* variables), with `overrides` on top.
std::vector<std::string> child_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> out;
  const auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with("OUTBOXD_TEST_")) continue;
    const bool replaced =
        std::any_of(overrides.begin(), overrides.end(),
                    [&](const std::string& e) { return name_of(e) == name_of(text); });
    if (!replaced) out.emplace_back(text);
  }
  out.insert(out.end(), overrides.begin(), overrides.end());
  return out;
}

// execve's form of `strings`: pointers into them, then a null. `strings` must outlive it.
std::vector<char*> null_terminated(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

daemon_process::daemon_process(const std::vector<std::string>& arguments,
                               const std::vector<std::string>& environment)
    : daemon_process(binary_path::at(OUTBOXD_BINARY), arguments, environment) {}

daemon_process::daemon_process(const binary_path& binary, const std::vector<std::string>& arguments,
                               const std::vector<std::string>& environment) {
  std::vector<std::string> argv_storage{binary.path()};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  // Daemons of parallel tests must not fight over the default admin port: any free one, unless
  // the test chose.
  const bool chose_admin = std::any_of(arguments.begin(), arguments.end(), [](const auto& a) {
    return a.starts_with("--admin-address");
  });
  if (!arguments.empty() && arguments.front() == "run" && !chose_admin) {
    argv_storage.insert(argv_storage.end(), {"--admin-address", "127.0.0.1:0"});
  }
  start(std::move(argv_storage), environment);
}

daemon_process::daemon_process(const other_program& program,
                               const std::vector<std::string>& arguments,
                               const std::vector<std::string>& environment) {
  std::vector<std::string> argv_storage{program.path};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  start(std::move(argv_storage), environment);
}

void daemon_process::start(std::vector<std::string> argv_storage,
                           const std::vector<std::string>& environment) {
  static int counter = 0;
  log_path_ =
      "/tmp/outboxd_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log";
  auto argv = null_terminated(argv_storage);
  auto environment_storage = child_environment(environment);
  auto envp = null_terminated(environment_storage);

  const int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) throw std::runtime_error("cannot create " + log_path_);
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(log_fd);
}

daemon_process::~daemon_process() {
  if (!exit_code_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  expect_no_sanitizer_report(log(), "the outboxd child process");
  ::unlink(log_path_.c_str());
}

void daemon_process::send(int signal) const { ::kill(pid_, signal); }

std::optional<int> daemon_process::wait_for_exit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  eventually(
      [&] {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      timeout, std::chrono::milliseconds(10));
  return exit_code_;
}

std::string daemon_process::log() const {
  std::ifstream file(log_path_);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

std::optional<std::uint16_t> daemon_process::admin_port(std::chrono::milliseconds timeout) const {
  static constexpr std::string_view kLine = "admin server listening on ";
  std::optional<std::uint16_t> port;
  eventually(
      [&] {
        const auto text = log();
        const auto at = text.find(kLine);
        if (at == std::string::npos) return false;
        const auto end = text.find('\n', at);
        if (end == std::string::npos) return false;
        const auto address = text.substr(at + kLine.size(), end - at - kLine.size());
        port = static_cast<std::uint16_t>(std::stoul(address.substr(address.rfind(':') + 1)));
        return true;
      },
      timeout, std::chrono::milliseconds(10));
  return port;
}

command_output run_binary(const std::vector<std::string>& arguments,
                          const std::vector<std::string>& environment,
                          std::chrono::milliseconds timeout) {
  return run_binary(binary_path::at(OUTBOXD_BINARY), arguments, environment, timeout);
}

command_output run_binary(const binary_path& binary, const std::vector<std::string>& arguments,
                          const std::vector<std::string>& environment,
                          std::chrono::milliseconds timeout) {
  static int counter = 0;
  const std::string base =
      "/tmp/outboxd_run_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
  const std::string out_path = base + ".out";
  const std::string err_path = base + ".err";
  std::vector<std::string> argv_storage{binary.path()};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  auto argv = null_terminated(argv_storage);
  auto environment_storage = child_environment(environment);
  auto envp = null_terminated(environment_storage);

  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error("cannot create " + base);
  const int pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_fd);
  ::close(err_fd);

  command_output result;
  const bool ended = eventually(
      [&] {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) != pid) return false;
        result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return true;
      },
      timeout, std::chrono::milliseconds(5));
  if (!ended) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    result.exit_code = 128 + SIGKILL;
  }
  const auto slurp = [](const std::string& path) {
    std::ifstream file(path);
    std::stringstream content;
    content << file.rdbuf();
    return content.str();
  };
  result.out = slurp(out_path);
  result.err = slurp(err_path);
  expect_no_sanitizer_report(result.err, "outboxd " + (arguments.empty() ? "" : arguments.front()));
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return result;
}

}  // namespace outboxd::test
