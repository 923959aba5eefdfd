#include "outboxd/cli.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "outboxd/admin/deliveries.hpp"
#include "outboxd/admin/policy.hpp"
#include "outboxd/admin/replay.hpp"
#include "outboxd/admin/status.hpp"
#include "outboxd/admin/webhooks.hpp"
#include "outboxd/config.hpp"
#include "outboxd/log.hpp"
#include "outboxd/migrator.hpp"
#include "outboxd/service.hpp"

namespace outboxd {
namespace asio = boost::asio;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

void print_help() {
  std::cout << "outboxd " OUTBOXD_VERSION
               " — transactional-outbox webhook daemon\n\n"
               "usage: outboxd <command> [options]\n\n"
               "commands:\n"
               "  run       dispatch outbox events (until SIGTERM)\n"
               "  migrate   create or upgrade the outboxd schema and outboxd.subscriptions()\n"
               "  status      backlog, due, delivering and dead deliveries, disabled webhooks\n"
               "  deliveries  list deliveries (--webhook, --status, --since, --until, --limit)\n"
               "  delivery    one delivery and its attempts\n"
               "  replay      send finished deliveries or poison events again\n"
               "  webhooks    subscriptions, disabled webhooks, open circuits, policies\n"
               "  enable      re-enable a webhook disabled after a 410 Gone\n"
               "  policy      per-webhook retry schedule, attempt and in-flight limits\n"
               "  version   print the version\n"
               "  help      print this text\n\n"
               "Every option can also be set as OUTBOXD_<OPTION> in the environment, e.g.\n"
               "OUTBOXD_DATABASE_URL or OUTBOXD_POLL_INTERVAL=500ms. Flags win.\n\n"
            << run_usage() << "\n"
            << migrate_usage() << "\n"
            << admin::status_usage() << "\n"
            << admin::deliveries_usage() << "\n"
            << admin::delivery_usage() << "\n"
            << admin::replay_usage() << "\n"
            << admin::webhooks_usage() << "\n"
            << admin::enable_usage() << "\n"
            << admin::policy_usage();
}

adapter load_adapter(const migrate_config& config) {
  if (config.adapter_file.empty()) {
    if (auto found = find_builtin_adapter(config.adapter)) return *found;
    std::string names;
    for (const auto& name : builtin_adapter_names()) names += (names.empty() ? "" : ", ") + name;
    throw config_error(
        fmt::format("--adapter {} is not built in (built in: {}); use "
                    "--adapter-file for your own",
                    config.adapter, names));
  }
  std::ifstream file(config.adapter_file);
  if (!file) throw config_error(fmt::format("cannot read --adapter-file {}", config.adapter_file));
  std::stringstream content;
  content << file.rdbuf();
  return adapter{config.adapter_file, content.str()};
}

// A plain function, not a capturing lambda: a lambda coroutine's captures die with the lambda.
asio::awaitable<int> migrate_database(pg::connection& connection, const migrate_config& config,
                                      const adapter& subscriptions_adapter) {
  // Arguments of a co_await are named locals: GCC 12 mis-destroys temporaries there.
  const auto options = config.database.connection("outboxd migrate");
  const auto connect_error = co_await connection.connect(options);
  if (connect_error) {
    spdlog::error("migrate: cannot connect to PostgreSQL: {}", connection.last_error());
    co_return kExitFailed;
  }
  const migrate_options plan{.subscriptions_adapter = subscriptions_adapter,
                             .iam_schema = config.iam_schema,
                             .lock_wait = config.lock_wait,
                             .lock_timeout = config.lock_timeout,
                             .timeout = config.migrate_timeout};
  const auto report = co_await migrate(connection, plan);
  connection.close();
  if (report.error) {
    spdlog::error("migrate: {}", report.message);
    co_return kExitFailed;
  }
  spdlog::info(
      "migrate: schema version {} ({} migration(s) applied); subscriptions from adapter {} over "
      "schema {}",
      report.schema_version, report.applied.size(), subscriptions_adapter.name, config.iam_schema);
  co_return kExitOk;
}

int run_migrate(const migrate_config& config) {
  const auto subscriptions_adapter = load_adapter(config);
  asio::io_context io;
  pg::connection connection(io.get_executor());
  auto result = asio::co_spawn(io, migrate_database(connection, config, subscriptions_adapter),
                               asio::use_future);
  io.run();
  return result.get();
}

}  // namespace

int run_cli(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    print_help();
    return args.empty() ? kExitUsage : kExitOk;
  }
  const std::string& command = args[0];
  const std::vector<std::string> options(args.begin() + 1, args.end());
  try {
    if (command == "version" || command == "--version") {
      std::cout << "outboxd " OUTBOXD_VERSION "\n";
      return kExitOk;
    }
    if (command == "run") {
      const auto config = parse_run_config(options);
      setup_logging(config.log_level);
      return run_service(config);
    }
    if (command == "migrate") {
      const auto config = parse_migrate_config(options);
      setup_logging(config.log_level);
      return run_migrate(config);
    }
    if (command == "status") return admin::run_status(options);
    if (command == "deliveries") return admin::run_deliveries(options);
    if (command == "delivery") return admin::run_delivery(options);
    if (command == "replay") return admin::run_replay(options);
    if (command == "webhooks") return admin::run_webhooks(options);
    if (command == "enable") return admin::run_enable(options);
    if (command == "policy") return admin::run_policy(options);
    std::cerr << "outboxd: unknown command '" << command << "' (try: outboxd help)\n";
    return kExitUsage;
  } catch (const config_error& e) {
    std::cerr << "outboxd " << command << ": " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace outboxd
