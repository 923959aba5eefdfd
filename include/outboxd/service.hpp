#pragma once

#include <functional>

#include "outboxd/config.hpp"

namespace outboxd {

// `outboxd run`: the listener and the dispatcher on one event loop, until SIGTERM or SIGINT.
// The first signal stops claiming and lets in-flight work finish within shutdown_timeout; a
// second one exits at once. SIGHUP calls `reread` (the same sources again, the --config file as
// it is now) and applies what can change while running; an invalid result changes nothing.
// Returns the process exit code.
int run_service(const run_config& config, std::function<run_config()> reread = {});

}  // namespace outboxd
