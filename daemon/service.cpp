#include "outboxd/service.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <cstdlib>
#include <exception>

#include "outboxd/backoff.hpp"
#include "outboxd/http/admin_server.hpp"
#include "outboxd/log.hpp"
#include "outboxd/migrator.hpp"
#include "outboxd/pipeline.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("service");
  return *component;
}

// Leaving at once, with work in flight: nothing is lost, since every claimed delivery is leased
// and another daemon (or this one, restarted) takes it over when the lease ends. Unwinding instead
// would destroy objects that suspended coroutines still point to.
[[noreturn]] void exit_now() {
  spdlog::default_logger()->flush();
  std::_Exit(1);
}

enum class startup { ready, refused, stopped };

// Webhook secrets and event data travel on the daemon's sessions: say so when they cross a
// network in clear. Checked on the start's session; the others use the same connection string.
void warn_if_unencrypted(const pg::session_transport& transport) {
  if (!pg::crosses_network_in_clear(transport)) return;
  log().warn(
      "the connection to PostgreSQL at {} is not encrypted: webhook secrets and event data cross "
      "the network in clear; set sslmode=verify-full (or require) in --database-url",
      transport.address.empty() ? transport.host : transport.host + " (" + transport.address + ")");
}

// Before any loop starts: the database must be at this binary's schema version. An unreachable
// PostgreSQL is waited for (reconnect backoff) until it answers or a signal stops the daemon;
// a schema behind or ahead of the binary is the operator's to fix, so the daemon refuses to run.
// (A plain function, not a capturing lambda: a lambda coroutine's captures die with the lambda.)
asio::awaitable<startup> check_schema_at_start(pg::connection& connection,
                                               asio::steady_timer& retry, const run_config& config,
                                               const bool& stopping) {
  const auto options = config.database.connection("outboxd run");
  backoff delays(config.reconnect);
  std::string last_problem;
  while (!stopping) {
    const auto connect_error = co_await connection.ensure_connected(options);
    schema_check check;
    if (connect_error) {
      check.message = fmt::format("cannot connect to PostgreSQL: {}", connection.last_error());
    } else {
      check = co_await check_schema_version(connection);
    }
    if (stopping) break;
    if (check.status == schema_check::state::current) {
      if (!last_problem.empty()) log().info("PostgreSQL answers again; schema is current");
      warn_if_unencrypted(connection.transport());
      connection.close();
      co_return startup::ready;
    }
    if (check.status != schema_check::state::unavailable) {
      log().error("{}", check.message);
      connection.close();
      co_return startup::refused;
    }
    if (check.message != last_problem) {
      log().warn("{}; retrying until it answers", check.message);
      last_problem = check.message;
    }
    connection.close();
    if (stopping) break;
    retry.expires_after(delays.next());
    co_await retry.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  co_return startup::stopped;
}

}  // namespace

int run_service(const run_config& started_with, std::function<run_config()> reread) {
  asio::io_context io;
  // What is in force: the start's settings, with the live ones as the last good reload set them.
  run_config config = started_with;
  pipeline daemon(io.get_executor(), config);
  // A CA file or client certificate that does not load would fail every https delivery: an
  // operator's mistake, told at start rather than as an error on each attempt.
  if (!daemon.client().tls_setup_error().empty()) {
    log().error("TLS for webhook endpoints: {}", daemon.client().tls_setup_error());
    return 1;
  }

  asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
  asio::steady_timer shutdown_deadline(io);
  int exit_code = 0;
  int running = pipeline::kLoops;
  bool stopping = false;
  bool started = false;
  pg::connection startup_connection(io.get_executor());
  asio::steady_timer startup_retry(io);

  // Up before the schema check, so /healthz answers and /readyz says why not while PostgreSQL is
  // away. The routes run on this thread, between the loops' steps.
  http::admin_server admin(
      io.get_executor(), {},
      {.metrics =
           [&] {
             return http::admin_reply{.content_type = std::string(kMetricsContentType),
                                      .body = daemon.scrape()};
           },
       .ready =
           [&] {
             auto reason = stopping   ? std::string("stopping")
                           : !started ? std::string("waiting for PostgreSQL and the schema check")
                                      : daemon.not_ready_reason();
             if (reason.empty()) return http::admin_reply{.body = "ready\n"};
             return http::admin_reply{.status = 503, .body = reason + "\n"};
           }});
  if (config.admin_address) {
    const auto listen_error = admin.listen(*config.admin_address);
    if (listen_error) {
      log().error("cannot start the admin server on {}: {}", http::to_string(*config.admin_address),
                  listen_error.message());
      return 1;
    }
    log().info("admin server listening on {}", http::to_string(admin.local_endpoint()));
    admin.start();
  }

  // Stop claiming, let in-flight work finish, and exit anyway at the deadline.
  const auto begin_shutdown = [&](const std::string& why) {
    if (stopping) return;
    stopping = true;
    if (!started) {
      // Still waiting for PostgreSQL: nothing is in flight.
      log().info("{}: stopping before start", why);
      startup_retry.cancel();
      startup_connection.close();
      return;
    }
    log().info("{}: stopping, finishing in-flight work (deadline {} ms)", why,
               config.shutdown_timeout.count());
    daemon.stop();
    shutdown_deadline.expires_after(config.shutdown_timeout);
    shutdown_deadline.async_wait([](const boost::system::error_code& timer_ec) {
      if (timer_ec) return;
      log().error("shutdown deadline passed with work in flight; exiting");
      exit_now();
    });
  };

  const auto finished = [&](std::string_view loop, std::exception_ptr error) {
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        log().critical("{} stopped unexpectedly: {}", loop, e.what());
      }
      exit_code = 1;
      begin_shutdown("a loop failed");
    }
    if (--running == 0) {
      signals.cancel();
      shutdown_deadline.cancel();
      admin.stop();
    }
  };

  // Runs on the io_context's one thread, between two steps of the loops: nothing sees a
  // half-applied configuration. Parse and validate everything first; apply only a wholly valid
  // result.
  const auto reload = [&] {
    if (!reread || stopping) {
      log().info("SIGHUP: not reloading {}", stopping ? "while stopping" : "(no sources)");
      return;
    }
    run_config next;
    try {
      next = reread();
    } catch (const std::exception& e) {
      log().error("SIGHUP: settings not reloaded, the current ones stay in force: {}", e.what());
      return;
    }
    const auto plan = plan_reload(config, next);
    for (const auto& name : plan.restart) {
      log().warn("SIGHUP: {} changed: takes effect after a restart", name);
    }
    if (plan.live.empty()) {
      log().info("SIGHUP: settings reread; nothing that applies while running changed");
      return;
    }
    apply_live_settings(config, next);
    daemon.reconfigure(config);
    set_log_level(config.log_level);
    std::string changes;
    for (const auto& change : plan.live) changes += (changes.empty() ? "" : ", ") + change;
    log().info("SIGHUP: applied {}", changes);
  };

  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int signal) {
        if (ec) return;
        if (signal == SIGHUP) {
          reload();
        } else if (!stopping) {
          begin_shutdown(fmt::format("signal {}", signal));
        } else {
          log().warn("second signal {}: exiting now", signal);
          exit_now();
        }
        signals.async_wait(on_signal);
      };
  signals.async_wait(on_signal);

  asio::co_spawn(io, check_schema_at_start(startup_connection, startup_retry, config, stopping),
                 [&](std::exception_ptr error, startup outcome) {
                   if (error) {
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       log().critical("schema check failed unexpectedly: {}", e.what());
                     }
                     outcome = startup::refused;
                   }
                   if (outcome == startup::ready && !stopping) {
                     started = true;
                     log().info("outboxd {} running: poll interval {} ms, batch size {}",
                                OUTBOXD_VERSION, config.poll_interval.count(), config.batch_size);
                     daemon.start(finished);
                     return;
                   }
                   if (outcome == startup::refused) exit_code = 1;
                   stopping = true;
                   signals.cancel();
                   admin.stop();
                 });
  io.run();
  daemon.client().close_idle();
  log().info("outboxd stopped");
  return exit_code;
}

}  // namespace outboxd
