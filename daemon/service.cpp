#include "outboxd/service.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <exception>

#include "outboxd/dispatcher.hpp"
#include "outboxd/pg/listener.hpp"
#include "outboxd/wake_signal.hpp"

namespace outboxd {
namespace asio = boost::asio;

int run_service(const run_config& config) {
  asio::io_context io;
  auto executor = io.get_executor();

  wake_signal wake(executor);
  pg::listener listener(
      executor,
      {.database = config.database.connection("outboxd listener"), .reconnect = config.reconnect},
      [&wake] { wake.notify(); });
  dispatcher dispatch(executor,
                      {.database = config.database.connection("outboxd dispatcher"),
                       .batch_size = config.batch_size,
                       .poll_interval = config.poll_interval,
                       .reconnect = config.reconnect},
                      wake);

  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer shutdown_deadline(io);
  int exit_code = 0;
  int running = 2;
  bool stopping = false;

  const auto finished = [&](const char* what) {
    return [&, what](std::exception_ptr error) {
      if (error) {
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          spdlog::critical("{} stopped unexpectedly: {}", what, e.what());
        }
        exit_code = 1;
        listener.stop();
        dispatch.stop();
      }
      if (--running == 0) {
        signals.cancel();
        shutdown_deadline.cancel();
      }
    };
  };

  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          spdlog::info("SIGHUP: no setting of this version can be reloaded; keeping the current");
        } else if (!stopping) {
          stopping = true;
          spdlog::info("signal {}: stopping, finishing in-flight work (deadline {} ms)", signal,
                       config.shutdown_timeout.count());
          listener.stop();
          dispatch.stop();
          shutdown_deadline.expires_after(config.shutdown_timeout);
          shutdown_deadline.async_wait([&](const boost::system::error_code& timer_ec) {
            if (timer_ec) return;
            spdlog::error("shutdown deadline passed with work in flight; exiting");
            exit_code = 1;
            io.stop();
          });
        } else {
          spdlog::warn("second signal {}: exiting now", signal);
          exit_code = 1;
          io.stop();
          return;
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  spdlog::info("outboxd {} running: poll interval {} ms, batch size {}", OUTBOXD_VERSION,
               config.poll_interval.count(), config.batch_size);
  asio::co_spawn(io, listener.run(), finished("listener"));
  asio::co_spawn(io, dispatch.run(), finished("dispatcher"));
  io.run();
  spdlog::info("outboxd stopped");
  return exit_code;
}

}  // namespace outboxd
