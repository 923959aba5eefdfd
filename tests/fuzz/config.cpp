// libFuzzer target: the settings of `outboxd run` and `outboxd migrate` as an operator writes them
// (OUTBOXD_* variables, flags, a --config file), through load_run_config / load_migrate_config,
// and the value parsers they use (durations, counts, CIDRs, the retry schedule, the admin
// address) on the raw text. Every bad value must end in a config_error naming the setting;
// anything else escaping is a bug (libFuzzer reports the uncaught exception).
//
// Input: one byte choosing the source (0: OUTBOXD_ variables for run, 1: command-line arguments
// for run, 2: a config file for run, 3: OUTBOXD_ variables for migrate), then one entry per line.
// Inputs naming a file setting are skipped: a path such as /dev/zero would make the harness read
// forever, which is the operator's choice and no parser's bug.

#include "outboxd/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <string>
#include <vector>

#include "fuzz_input.hpp"
#include "outboxd/http/address_policy.hpp"
#include "outboxd/http/admin_server.hpp"
#include "outboxd/retry_policy.hpp"

namespace {

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto end = text.find('\n');
    out.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}

bool names_a_file(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("file") != std::string::npos || lower.find("config") != std::string::npos;
}

// The value parsers on their own, each on the whole text.
void parse_values(std::string_view text) {
  try {
    const auto duration = outboxd::parse_duration(text, "--fuzz");
    OUTBOXD_FUZZ_CHECK(duration.count() >= 0);
  } catch (const outboxd::config_error&) {
  }
  try {
    const auto count = outboxd::parse_count(std::string(text), "--fuzz", 1, 10'000);
    OUTBOXD_FUZZ_CHECK(count >= 1 && count <= 10'000);
  } catch (const outboxd::config_error&) {
  }
  try {
    for (const auto delay : outboxd::parse_retry_schedule(text)) {
      OUTBOXD_FUZZ_CHECK(delay.count() >= 0);
    }
  } catch (const outboxd::config_error&) {
  }
  if (const auto network = outboxd::http::cidr::parse(text)) {
    OUTBOXD_FUZZ_CHECK(network->prefix_length >= 0 &&
                       network->prefix_length <= (network->network.is_v4() ? 32 : 128));
    OUTBOXD_FUZZ_CHECK(network->contains(network->network));
  }
  const auto admin = outboxd::http::parse_listen_address(text);
  OUTBOXD_FUZZ_CHECK(admin.problem.empty() || !admin.endpoint);
}

// One file per process, rewritten for each input and removed when the process ends.
const std::string& config_file_path() {
  static const struct scratch_file {
    std::string path = "/tmp/outboxd_fuzz_config_" + std::to_string(::getpid()) + ".conf";
    ~scratch_file() { ::unlink(path.c_str()); }
  } file;
  return file.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto text = outboxd::fuzz::as_text(data + 1, size - 1);
  parse_values(text);
  if (names_a_file(text)) return 0;

  outboxd::settings_input input;
  input.environment.emplace_back("OUTBOXD_DATABASE_URL=postgresql://fuzz@127.0.0.1/outboxd");
  const int source = data[0] % 4;
  if (source == 1) {
    input.args = lines(text);
  } else if (source == 2) {
    const auto& path = config_file_path();
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    input.args = {"--config", path};
  } else {
    for (const auto& line : lines(text)) input.environment.push_back("OUTBOXD_" + line);
  }

  try {
    if (source == 3) {
      const auto config = outboxd::load_migrate_config(input);
      OUTBOXD_FUZZ_CHECK(config.lock_timeout.count() >= 1);
    } else {
      const auto config = outboxd::load_run_config(input);
      OUTBOXD_FUZZ_CHECK(config.batch_size >= 1);
      OUTBOXD_FUZZ_CHECK(!config.delivery.retry.delays.empty());
      OUTBOXD_FUZZ_CHECK(config.delivery.http.connect_timeout <=
                         config.delivery.http.request_timeout);
      // A reload to the same settings changes nothing.
      const auto plan = outboxd::plan_reload(config, config);
      OUTBOXD_FUZZ_CHECK(plan.live.empty() && plan.restart.empty());
    }
  } catch (const outboxd::config_error& e) {
    // An operator must be told what is wrong.
    OUTBOXD_FUZZ_CHECK(e.what()[0] != '\0');
  }
  return 0;
}
