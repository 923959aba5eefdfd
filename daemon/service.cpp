#include "outboxd/service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <cstdlib>
#include <exception>

#include "outboxd/pipeline.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

// Leaving at once, with work in flight: nothing is lost, since every claimed delivery is leased
// and another daemon (or this one, restarted) takes it over when the lease ends. Unwinding instead
// would destroy objects that suspended coroutines still point to.
[[noreturn]] void exit_now() {
  spdlog::default_logger()->flush();
  std::_Exit(1);
}

}  // namespace

int run_service(const run_config& config) {
  asio::io_context io;
  pipeline daemon(io.get_executor(), config);

  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer shutdown_deadline(io);
  int exit_code = 0;
  int running = pipeline::kLoops;
  bool stopping = false;

  // Stop claiming, let in-flight work finish, and exit anyway at the deadline.
  const auto begin_shutdown = [&](const std::string& why) {
    if (stopping) return;
    stopping = true;
    spdlog::info("{}: stopping, finishing in-flight work (deadline {} ms)", why,
                 config.shutdown_timeout.count());
    daemon.stop();
    shutdown_deadline.expires_after(config.shutdown_timeout);
    shutdown_deadline.async_wait([](const boost::system::error_code& timer_ec) {
      if (timer_ec) return;
      spdlog::error("shutdown deadline passed with work in flight; exiting");
      exit_now();
    });
  };

  const auto finished = [&](std::string_view loop, std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        spdlog::critical("{} stopped unexpectedly: {}", loop, e.what());
      }
      exit_code = 1;
      begin_shutdown("a loop failed");
    }
    if (--running == 0) {
      signals.cancel();
      shutdown_deadline.cancel();
    }
  };

  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          spdlog::info("SIGHUP: no setting of this version can be reloaded; keeping the current");
        } else if (!stopping) {
          begin_shutdown(fmt::format("signal {}", signal));
        } else {
          spdlog::warn("second signal {}: exiting now", signal);
          exit_now();
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  spdlog::info("outboxd {} running: poll interval {} ms, batch size {}", OUTBOXD_VERSION,
               config.poll_interval.count(), config.batch_size);
  daemon.start(finished);
  io.run();
  daemon.client().close_idle();
  spdlog::info("outboxd stopped");
  return exit_code;
}

}  // namespace outboxd
