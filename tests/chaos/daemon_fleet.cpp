#include "chaos/daemon_fleet.hpp"

#include <signal.h>

#include <sstream>

namespace outboxd::chaos {
namespace {

// A daemon that logged this many error lines has said enough; keep the run's memory bounded.
constexpr std::size_t kMaxErrorLines = 200;

}  // namespace

daemon_fleet::daemon_fleet(fleet_options options) : options_(std::move(options)) {
  const auto server = test::endpoint_of(options_.database_url);
  slots_.resize(static_cast<std::size_t>(options_.daemons));
  for (auto& s : slots_) s.proxy = std::make_unique<test::tcp_proxy>(server.host, server.port);
}

daemon_fleet::~daemon_fleet() {
  const std::lock_guard lock(mutex_);
  for (auto& s : slots_) {
    if (s.process && s.paused) s.process->send(SIGCONT);
    s.process.reset();
  }
}

void daemon_fleet::start(int daemon) {
  const std::lock_guard lock(mutex_);
  auto& s = slots_[static_cast<std::size_t>(daemon)];
  if (s.process) return;
  std::vector<std::string> arguments{
      "run", "--database-url",
      test::with_endpoint(options_.database_url, s.proxy->host(), s.proxy->port()), "--instance-id",
      instance_id(daemon)};
  arguments.insert(arguments.end(), options_.run_arguments.begin(), options_.run_arguments.end());
  s.process =
      std::make_unique<test::daemon_process>(test::binary_path::at(options_.binary), arguments);
  s.paused = false;
  ++starts_;
}

void daemon_fleet::kill(int daemon) {
  const std::lock_guard lock(mutex_);
  auto& s = slots_[static_cast<std::size_t>(daemon)];
  if (!s.process) return;
  s.process->send(SIGKILL);
  s.process->wait_for_exit(std::chrono::seconds(10));
  retire(s);
}

int daemon_fleet::terminate(int daemon, std::chrono::milliseconds timeout) {
  const std::lock_guard lock(mutex_);
  auto& s = slots_[static_cast<std::size_t>(daemon)];
  if (!s.process) return -1;
  if (s.paused) s.process->send(SIGCONT);
  s.process->send(SIGTERM);
  auto code = s.process->wait_for_exit(timeout);
  if (!code) {
    s.process->send(SIGKILL);
    code = s.process->wait_for_exit(std::chrono::seconds(10));
  }
  retire(s);
  return code.value_or(-1);
}

void daemon_fleet::pause(int daemon) {
  const std::lock_guard lock(mutex_);
  auto& s = slots_[static_cast<std::size_t>(daemon)];
  if (!s.process || s.paused) return;
  s.process->send(SIGSTOP);
  s.paused = true;
}

void daemon_fleet::resume(int daemon) {
  const std::lock_guard lock(mutex_);
  auto& s = slots_[static_cast<std::size_t>(daemon)];
  if (!s.process || !s.paused) return;
  s.process->send(SIGCONT);
  s.paused = false;
}

bool daemon_fleet::running(int daemon) const {
  const std::lock_guard lock(mutex_);
  return slots_[static_cast<std::size_t>(daemon)].process != nullptr;
}

int daemon_fleet::pid(int daemon) const {
  const std::lock_guard lock(mutex_);
  const auto& s = slots_[static_cast<std::size_t>(daemon)];
  return s.process ? s.process->pid() : -1;
}

int daemon_fleet::starts() const {
  const std::lock_guard lock(mutex_);
  return starts_;
}

void daemon_fleet::retire(slot& s) {
  std::istringstream log(s.process->log());
  for (std::string line; std::getline(log, line);) {
    if (error_lines_.size() >= kMaxErrorLines) break;
    if (line.find(" error ") != std::string::npos || line.find(" critical ") != std::string::npos) {
      error_lines_.push_back(line);
    }
  }
  s.process.reset();
  s.paused = false;
}

std::vector<std::string> daemon_fleet::error_lines() const {
  const std::lock_guard lock(mutex_);
  return error_lines_;
}

std::string daemon_fleet::log_tail(int daemon, std::size_t lines) const {
  const std::lock_guard lock(mutex_);
  const auto& s = slots_[static_cast<std::size_t>(daemon)];
  if (!s.process) return {};
  const auto text = s.process->log();
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at > 0; ++n) {
    at = text.rfind('\n', at - 1);
    if (at == std::string::npos) {
      at = 0;
      break;
    }
  }
  return text.substr(at);
}

}  // namespace outboxd::chaos
