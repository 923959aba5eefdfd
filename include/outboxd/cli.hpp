#pragma once

#include <boost/program_options/options_description.hpp>
#include <functional>
#include <set>
#include <string>
#include <vector>

namespace outboxd {

// One `outboxd <name>` command. Adding a command is adding one entry to commands() in cli.cpp;
// `outboxd help`, `outboxd <name> --help`, the environment check and docs/configuration.md's
// test then cover it.
struct command {
  std::string name;
  std::string summary;  // one line for `outboxd help`
  // Its own settings (common_options() are added to every command that has any). Read for names,
  // defaults and help texts only: the variables they are bound to need not be alive. Empty for
  // a command without settings.
  std::function<boost::program_options::options_description()> options;
  // Options read from its command line only, never from the environment or a file (the admin
  // commands' own, so a daemon's OUTBOXD_MAX_ATTEMPTS never becomes `policy set --max-attempts`).
  // Documented with the command (docs/admin-cli.md); empty for none.
  std::function<boost::program_options::options_description()> flags = nullptr;
  // The section of docs/configuration.md that documents `options`; "" for "outboxd <name>".
  std::string settings_section = "";
  // Runs it; `args` is the command line after the command's name (`--help` never reaches it).
  // Read the settings with read_settings(your_options, {args, process_environment()}) so flags,
  // OUTBOXD_* variables and the --config file work alike; throw config_error for bad usage.
  // Returns the exit code.
  std::function<int(const std::vector<std::string>& args)> run;
};

const std::vector<command>& commands();
// The settings of every command, without "--": an OUTBOXD_* variable or a config-file entry that
// names none of these is refused.
std::set<std::string> every_setting_name();

// Parses the subcommand and its settings and runs it. Returns the process exit code:
// 0 success, 1 the command failed, 2 bad usage or configuration.
int run_cli(const std::vector<std::string>& args);

}  // namespace outboxd
