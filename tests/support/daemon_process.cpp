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

#include "support/test_database.hpp"

namespace outboxd::test {

daemon_process::daemon_process(const std::vector<std::string>& arguments,
                               const std::vector<std::string>& environment) {
  static int counter = 0;
  log_path_ =
      "/tmp/outboxd_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + ".log";
  std::vector<std::string> argv_storage{OUTBOXD_BINARY};
  argv_storage.insert(argv_storage.end(), arguments.begin(), arguments.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The test's environment without the test suite's own OUTBOXD_TEST_* variables: they are no
  // setting of outboxd, which refuses unknown OUTBOXD_* variables.
  std::vector<std::string> environment_storage;
  const auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    if (text.starts_with("OUTBOXD_TEST_")) continue;
    const bool replaced =
        std::any_of(environment.begin(), environment.end(),
                    [&](const std::string& e) { return name_of(e) == name_of(text); });
    if (!replaced) environment_storage.emplace_back(text);
  }
  environment_storage.insert(environment_storage.end(), environment.begin(), environment.end());
  std::vector<char*> envp;
  for (auto& e : environment_storage) envp.push_back(e.data());
  envp.push_back(nullptr);

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

}  // namespace outboxd::test
