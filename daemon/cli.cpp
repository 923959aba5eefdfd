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
namespace po = boost::program_options;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

adapter load_adapter(const migrate_config& config) {
  if (config.adapter_file.empty()) {
    if (auto found = find_builtin_adapter(config.adapter)) return *found;
    std::string names;
    for (const auto& name : builtin_adapter_names()) names += (names.empty() ? "" : ", ") + name;
    throw config_error("--adapter", fmt::format("is not built in (built in: {}); use "
                                                "--adapter-file for your own",
                                                names));
  }
  std::ifstream file(config.adapter_file);
  if (!file) {
    throw config_error("--adapter-file", fmt::format("cannot read {}", config.adapter_file));
  }
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

int migrate_command(const std::vector<std::string>& args) {
  const settings_input input{args, process_environment()};
  const auto config = load_migrate_config(input);
  setup_logging(config.log_level, config.log_format);
  return run_migrate(config);
}

int run_command(const std::vector<std::string>& args) {
  const settings_input input{args, process_environment()};
  const auto config = load_run_config(input);
  setup_logging(config.log_level, config.log_format);
  // SIGHUP reads the same command line and environment again, and the --config file as it is.
  return run_service(config, [input] { return load_run_config(input); });
}

int version_command(const std::vector<std::string>&) {
  std::cout << "outboxd " OUTBOXD_VERSION "\n";
  return kExitOk;
}

int help_command(const std::vector<std::string>& args);

std::string text_of(const po::options_description& options) {
  std::ostringstream out;
  out << options;
  return out.str();
}

const command* find_command(std::string_view name) {
  for (const auto& entry : commands()) {
    if (entry.name == name) return &entry;
  }
  return nullptr;
}

void print_overview(std::ostream& out) {
  out << "outboxd " OUTBOXD_VERSION
         " — transactional-outbox webhook daemon\n\n"
         "usage: outboxd <command> [options]\n\ncommands:\n";
  for (const auto& entry : commands())
    out << fmt::format("  {:<12}{}\n", entry.name, entry.summary);
  out << "\n`outboxd <command> --help` lists a command's options.\n";
}

void print_command_help(const command& entry) {
  std::cout << fmt::format("usage: outboxd {}{}\n\n{}\n", entry.name,
                           entry.options ? " [options]" : "", entry.summary);
  if (!entry.options) return;
  if (entry.flags) std::cout << "\n" << text_of(entry.flags());
  std::cout << "\n" << text_of(entry.options()) << "\n" << text_of(common_options());
  std::cout << "\nEvery option can also be set as OUTBOXD_<OPTION> in the environment\n"
               "(--poll-interval: OUTBOXD_POLL_INTERVAL=500ms) or as `poll-interval = 500ms` in\n"
               "the --config file (env OUTBOXD_CONFIG). Flags win over the environment, the\n"
               "environment over the file. Durations need a unit: ms, s, m, h or d.\n";
}

int help_command(const std::vector<std::string>& args) {
  if (args.empty()) {
    print_overview(std::cout);
    return kExitOk;
  }
  const auto* entry = find_command(args[0]);
  if (entry == nullptr) {
    std::cerr << "outboxd help: unknown command '" << args[0] << "'\n";
    return kExitUsage;
  }
  print_command_help(*entry);
  return kExitOk;
}

bool asks_for_help(const std::vector<std::string>& args) {
  for (const auto& arg : args) {
    if (arg == "--") return false;
    if (arg == "--help" || arg == "-h") return true;
  }
  return false;
}

}  // namespace

// The admin commands share the database settings; docs/configuration.md lists them once.
const std::string kAdminSettings = "admin commands";

const std::vector<command>& commands() {
  static const std::vector<command> table{
      {"run", "dispatch outbox events (until SIGTERM; SIGHUP reloads settings)", run_flag_options,
       run_command},
      {"migrate", "create or upgrade the outboxd schema and outboxd.subscriptions()",
       migrate_flag_options, migrate_command},
      {"status", "backlog, due, delivering and dead deliveries, disabled webhooks, poison events",
       database_flag_options, admin::run_status, [] { return admin::status_flags{}.describe(); },
       kAdminSettings},
      {"deliveries", "list deliveries by webhook, status and time range", database_flag_options,
       admin::run_deliveries, [] { return admin::deliveries_flags{}.describe(); }, kAdminSettings},
      {"delivery", "one delivery (outboxd delivery ID) and all its attempts",
       database_flag_options, admin::run_delivery,
       [] { return admin::delivery_flags{}.describe(); }, kAdminSettings},
      {"replay", "send finished deliveries or poison events again, under the same message id",
       database_flag_options, admin::run_replay, [] { return admin::replay_flags{}.describe(); },
       kAdminSettings},
      {"webhooks", "subscriptions as outboxd resolves them: disabled state, circuits, policies",
       database_flag_options, admin::run_webhooks,
       [] { return admin::webhooks_flags{}.describe(); }, kAdminSettings},
      {"enable", "re-enable a webhook (outboxd enable WEBHOOK_ID) disabled after a 410 Gone",
       database_flag_options, admin::run_enable, [] { return admin::enable_flags{}.describe(); },
       kAdminSettings},
      {"policy", "per-webhook retry schedule, attempt and in-flight limits (set, show, clear)",
       database_flag_options, admin::run_policy, [] { return admin::policy_flags{}.describe(); },
       kAdminSettings},
      {"version", "print the version", nullptr, version_command},
      {"help", "list the commands; `outboxd help <command>` prints one's options", nullptr,
       help_command},
  };
  return table;
}

std::set<std::string> every_setting_name() {
  std::set<std::string> out;
  bool any = false;
  for (const auto& entry : commands()) {
    if (!entry.options) continue;
    any = true;
    const auto options = entry.options();  // a named local: options() refers into it
    for (const auto& option : options.options()) out.insert(option->long_name());
  }
  if (any) {
    const auto common = common_options();
    for (const auto& option : common.options()) out.insert(option->long_name());
  }
  return out;
}

int run_cli(const std::vector<std::string>& args) {
  if (args.empty()) {
    print_overview(std::cerr);
    return kExitUsage;
  }
  if (args[0] == "--help" || args[0] == "-h") return help_command({});
  if (args[0] == "--version") return version_command({});
  const std::string& name = args[0];
  const auto* entry = find_command(name);
  if (entry == nullptr) {
    std::cerr << "outboxd: unknown command '" << name << "' (try: outboxd help)\n";
    return kExitUsage;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (asks_for_help(rest)) {
    print_command_help(*entry);
    return kExitOk;
  }
  try {
    return entry->run(rest);
  } catch (const config_error& e) {
    std::cerr << "outboxd " << name << ": " << e.what() << "\n";
    return kExitUsage;
  }
}

}  // namespace outboxd
