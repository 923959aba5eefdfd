#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace outboxd::test {

// Which outboxd binary to run, when not the one built with the tests (a harness testing another
// build). Made only by at(), so that a braced list of arguments never converts to it.
class binary_path {
 public:
  static binary_path at(std::string path) {
    binary_path out;
    out.path_ = std::move(path);
    return out;
  }
  const std::string& path() const { return path_; }

 private:
  binary_path() = default;
  std::string path_;
};

// Another program to run as a daemon_process (an example receiver), by its path.
struct other_program {
  std::string path;
};

// The real `outboxd` binary (or another build of it, or another long-running program) as a child
// process, for crash and signal tests. Output goes to a log file. The destructor kills it if it is
// still running.
class daemon_process {
 public:
  // `environment` entries ("NAME=value") are added to the test's own environment, less its
  // OUTBOXD_TEST_* variables.
  explicit daemon_process(const std::vector<std::string>& arguments,
                          const std::vector<std::string>& environment = {});
  daemon_process(const other_program& program, const std::vector<std::string>& arguments,
                 const std::vector<std::string>& environment = {});
  daemon_process(const binary_path& binary, const std::vector<std::string>& arguments,
                 const std::vector<std::string>& environment = {});
  ~daemon_process();
  daemon_process(const daemon_process&) = delete;
  daemon_process& operator=(const daemon_process&) = delete;

  void send(int signal) const;
  // The exit code (128 + signal when killed by one), or nullopt if it still runs at the deadline.
  std::optional<int> wait_for_exit(std::chrono::milliseconds timeout);
  std::string log() const;
  // The child's process id (for /proc/<pid>/...).
  int pid() const { return pid_; }
  // The port of "admin server listening on HOST:PORT" in the log, once it is there.
  std::optional<std::uint16_t> admin_port(std::chrono::milliseconds timeout) const;

 private:
  void start(std::vector<std::string> argv, const std::vector<std::string>& environment);

  int pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// One run of the real binary to its end (an admin command), stdout and stderr kept apart.
struct command_output {
  int exit_code = -1;  // 128 + signal when killed by one (after `timeout`, SIGKILL)
  std::string out;
  std::string err;
};
command_output run_binary(const std::vector<std::string>& arguments,
                          const std::vector<std::string>& environment = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));
command_output run_binary(const binary_path& binary, const std::vector<std::string>& arguments,
                          const std::vector<std::string>& environment = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace outboxd::test
