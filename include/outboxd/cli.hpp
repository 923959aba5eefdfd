#pragma once

#include <string>
#include <vector>

namespace outboxd {

// Parses the subcommand and its settings and runs it. Returns the process exit code:
// 0 success, 1 the command failed, 2 bad usage or configuration.
int run_cli(const std::vector<std::string>& args);

}  // namespace outboxd
