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

// This component's lines, its name their "component" (log.hpp).
spdlog::logger& log() {
  static const auto component = outboxd::logger("cli");
  return *component;
}

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
    log().error("migrate: cannot connect to PostgreSQL: {}", connection.last_error());
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
    log().error("migrate: {}", report.message);
    co_return kExitFailed;
  }
  log().info(
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

// The admin commands share the database settings (docs/configuration.md lists them once, under
// "admin commands"); their own options are flags only.
command plain_command(std::string name, std::string summary,
                      std::function<po::options_description()> options,
                      std::function<int(const std::vector<std::string>&)> run) {
  command out;
  out.name = std::move(name);
  out.summary = std::move(summary);
  out.options = std::move(options);
  out.run = std::move(run);
  return out;
}

command admin_command(std::string name, std::string summary,
                      std::function<int(const std::vector<std::string>&)> run,
                      std::function<po::options_description()> flags) {
  command out;
  out.name = std::move(name);
  out.summary = std::move(summary);
  out.options = database_flag_options;
  out.run = std::move(run);
  out.flags = std::move(flags);
  out.settings_section = "admin commands";
  return out;
}

const std::vector<command>& commands() {
  static const std::vector<command> table{
      plain_command("run", "dispatch outbox events (until SIGTERM; SIGHUP reloads settings)",
                    run_flag_options, run_command),
      plain_command("migrate", "create or upgrade the outboxd schema and outboxd.subscriptions()",
                    migrate_flag_options, migrate_command),
      admin_command(
          "status",
          "backlog, due, delivering and dead deliveries, disabled webhooks, poison events",
          admin::run_status, [] { return admin::status_flags{}.describe(); }),
      admin_command("deliveries", "list deliveries by webhook, status and time range",
                    admin::run_deliveries, [] { return admin::deliveries_flags{}.describe(); }),
      admin_command("delivery", "one delivery (outboxd delivery ID) and all its attempts",
                    admin::run_delivery, [] { return admin::delivery_flags{}.describe(); }),
      admin_command("replay",
                    "send finished deliveries or poison events again, under the same message id",
                    admin::run_replay, [] { return admin::replay_flags{}.describe(); }),
      admin_command("webhooks",
                    "subscriptions as outboxd resolves them: disabled state, circuits, policies",
                    admin::run_webhooks, [] { return admin::webhooks_flags{}.describe(); }),
      admin_command("enable",
                    "re-enable a webhook (outboxd enable WEBHOOK_ID) disabled after a 410 Gone",
                    admin::run_enable, [] { return admin::enable_flags{}.describe(); }),
      admin_command("policy",
                    "per-webhook retry schedule, attempt and in-flight limits (set, show, clear)",
                    admin::run_policy, [] { return admin::policy_flags{}.describe(); }),
      plain_command("version", "print the version", nullptr, version_command),
      plain_command("help", "list the commands; `outboxd help <command>` prints one's options",
                    nullptr, help_command),
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
