#pragma once

#include "outboxd/config.hpp"

namespace outboxd {

// `outboxd run`: the listener and the dispatcher on one event loop, until SIGTERM or SIGINT.
// The first signal stops claiming and lets in-flight work finish within shutdown_timeout; a
// second one exits at once. Returns the process exit code.
int run_service(const run_config& config);

}  // namespace outboxd
