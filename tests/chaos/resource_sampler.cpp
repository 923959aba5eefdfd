#include "chaos/resource_sampler.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace outboxd::chaos {
namespace {

constexpr auto kInterval = std::chrono::seconds(1);
constexpr auto kSlice = std::chrono::milliseconds(50);

std::int64_t count_fds(int pid) {
  std::error_code ec;
  std::int64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

std::int64_t rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

}  // namespace

resource_sampler::resource_sampler(int pid, std::function<std::int64_t()> connections,
                                   std::function<bool()> disturbed)
    : pid_(pid),
      connections_(std::move(connections)),
      disturbed_(std::move(disturbed)),
      thread_([this] { run(); }) {}

resource_sampler::~resource_sampler() { stop(); }

void resource_sampler::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void resource_sampler::run() {
  auto next = std::chrono::steady_clock::now();
  while (!stopping_) {
    resource_sample s{.at = std::chrono::steady_clock::now(),
                      .fds = count_fds(pid_),
                      .rss_kib = rss_kib(pid_),
                      .connections = connections_(),
                      .disturbed = disturbed_()};
    if (s.fds >= 0 && s.rss_kib >= 0) {
      const std::lock_guard lock(mutex_);
      samples_.push_back(s);
    }
    next += kInterval;
    while (!stopping_ && std::chrono::steady_clock::now() < next)
      std::this_thread::sleep_for(kSlice);
  }
}

growth_verdict resource_sampler::judge(const growth_tolerance& tolerance) const {
  std::vector<resource_sample> samples;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& s : samples_) {
      if (!s.disturbed) samples.push_back(s);
    }
  }
  growth_verdict v;
  v.samples = samples.size();
  if (samples.size() < 6) {
    v.problems.push_back(
        fmt::format("only {} undisturbed resource samples of daemon 0", samples.size()));
    return v;
  }
  const auto third = samples.size() / 3;
  const auto largest = [](auto begin, auto end) {
    resource_sample m;
    for (auto it = begin; it != end; ++it) {
      m.fds = std::max(m.fds, it->fds);
      m.rss_kib = std::max(m.rss_kib, it->rss_kib);
      m.connections = std::max(m.connections, it->connections);
    }
    return m;
  };
  v.first = largest(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(third));
  v.last = largest(samples.end() - static_cast<std::ptrdiff_t>(third), samples.end());
  if (v.last.fds > v.first.fds + tolerance.fds) {
    v.problems.push_back(fmt::format("file descriptors grew from {} to {} (tolerance +{})",
                                     v.first.fds, v.last.fds, tolerance.fds));
  }
  if (v.last.connections > v.first.connections + tolerance.connections) {
    v.problems.push_back(fmt::format("database connections grew from {} to {} (tolerance +{})",
                                     v.first.connections, v.last.connections,
                                     tolerance.connections));
  }
  const auto rss_limit =
      static_cast<std::int64_t>(static_cast<double>(v.first.rss_kib) * tolerance.rss_factor) +
      tolerance.rss_slack_kib;
  if (v.last.rss_kib > rss_limit) {
    v.problems.push_back(fmt::format("RSS grew from {} KiB to {} KiB (tolerance {} KiB)",
                                     v.first.rss_kib, v.last.rss_kib, rss_limit));
  }
  return v;
}

}  // namespace outboxd::chaos
