// docs/configuration.md against the code: one table per command, one row per setting, with the
// setting's variable and default; no row for a setting that does not exist. And every command's
// --help prints its own settings and exits 0.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "outboxd/cli.hpp"
#include "outboxd/config.hpp"

namespace outboxd {
namespace {

struct doc_row {
  std::string environment;
  std::string default_value;
};
// Section title ("outboxd run", "every command") → flag → row.
using doc_tables = std::map<std::string, std::map<std::string, doc_row>>;

std::string trim(std::string text) {
  text.erase(0, text.find_first_not_of(' '));
  text.erase(text.find_last_not_of(' ') + 1);
  return text;
}

std::vector<std::string> cells(const std::string& line) {
  std::vector<std::string> out;
  std::stringstream stream(line.substr(1));
  for (std::string cell; std::getline(stream, cell, '|');) out.push_back(trim(cell));
  return out;
}

doc_tables read_doc() {
  std::ifstream file(OUTBOXD_CONFIGURATION_DOC);
  EXPECT_TRUE(file) << OUTBOXD_CONFIGURATION_DOC;
  doc_tables tables;
  std::string section;
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with("## ")) section = trim(line.substr(3));
    if (!line.starts_with("| --")) continue;
    const auto row = cells(line);
    EXPECT_GE(row.size(), 4u) << line;
    if (row.size() < 4) continue;
    EXPECT_FALSE(tables[section].contains(row[0])) << "listed twice in " << section << ": " << line;
    tables[section][row[0]] = {row[1], row[2]};
  }
  return tables;
}

std::string variable_of(const std::string& name) {
  std::string out = "OUTBOXD_";
  for (const char c : name) {
    out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

// "arg (=5s)" → "5s"; "" without a default.
std::string default_of(const boost::program_options::option_description& option) {
  const auto shown = option.format_parameter();
  // The last "(=": a switch with an implicit value shows "[=arg(=true)] (=false)".
  const auto start = shown.rfind("(=");
  if (start == std::string::npos) return "";
  return shown.substr(start + 2, shown.size() - start - 3);
}

void expect_table_matches(const boost::program_options::options_description& options,
                          const std::map<std::string, doc_row>& table, const std::string& section) {
  for (const auto& option : options.options()) {
    const auto flag = "--" + option->long_name();
    const auto found = table.find(flag);
    if (found == table.end()) {
      ADD_FAILURE() << flag << " is missing from the table '## " << section << "' of "
                    << OUTBOXD_CONFIGURATION_DOC;
      continue;
    }
    if (option->long_name() != "help") {
      EXPECT_EQ(found->second.environment, variable_of(option->long_name()))
          << section << " " << flag;
    }
    const auto expected_default = default_of(*option);
    if (!expected_default.empty()) {
      EXPECT_EQ(found->second.default_value, expected_default) << section << " " << flag;
    }
  }
  for (const auto& [flag, row] : table) {
    EXPECT_NE(options.find_nothrow(flag.substr(2), false), nullptr)
        << section << " lists " << flag << ", which is no setting of it";
  }
}

TEST(config_doc, every_setting_of_every_command_is_documented_and_nothing_else) {
  const auto tables = read_doc();
  std::set<std::string> documented;
  for (const auto& entry : commands()) {
    const auto section =
        entry.settings_section.empty() ? "outboxd " + entry.name : entry.settings_section;
    if (!entry.options) {
      EXPECT_FALSE(tables.contains(section)) << section << " has no settings";
      continue;
    }
    documented.insert(section);
    const auto table = tables.find(section);
    if (table == tables.end()) {
      ADD_FAILURE() << "no table '## " << section << "' in " << OUTBOXD_CONFIGURATION_DOC;
      continue;
    }
    expect_table_matches(entry.options(), table->second, section);
  }
  const auto common = tables.find("every command");
  ASSERT_NE(common, tables.end());
  expect_table_matches(common_options(), common->second, "every command");
  // Every table belongs to a command (or to all of them).
  EXPECT_EQ(tables.size(), documented.size() + 1);
  EXPECT_GE(documented.size(), 2u);
}

std::string help_of(const std::vector<std::string>& args, int& exit_code) {
  ::testing::internal::CaptureStdout();
  exit_code = run_cli(args);
  return ::testing::internal::GetCapturedStdout();
}

TEST(config_doc, each_commands_help_prints_its_own_settings_and_exits_0) {
  for (const auto& entry : commands()) {
    int exit_code = -1;
    const auto text = help_of({entry.name, "--help"}, exit_code);
    EXPECT_EQ(exit_code, 0) << entry.name;
    EXPECT_NE(text.find("usage: outboxd " + entry.name), std::string::npos) << text;
    if (!entry.options) continue;
    auto own = entry.options();
    if (entry.flags) own.add(entry.flags());
    for (const auto& option : own.options()) {
      EXPECT_NE(text.find("--" + option->long_name() + " "), std::string::npos)
          << entry.name << " --help lacks --" << option->long_name();
    }
    // No other command's settings.
    for (const auto& other : commands()) {
      if (!other.options || other.name == entry.name) continue;
      const auto theirs = other.options();
      for (const auto& option : theirs.options()) {
        if (own.find_nothrow(option->long_name(), false) != nullptr) continue;
        EXPECT_EQ(text.find("--" + option->long_name() + " "), std::string::npos)
            << entry.name << " --help shows " << other.name << "'s --" << option->long_name();
      }
    }
  }
  int exit_code = -1;
  const auto overview = help_of({"help"}, exit_code);
  EXPECT_EQ(exit_code, 0);
  for (const auto& entry : commands()) {
    EXPECT_NE(overview.find("  " + entry.name + " "), std::string::npos) << overview;
  }
  EXPECT_EQ(overview.find("--poll-interval"), std::string::npos) << "help lists commands only";
}

}  // namespace
}  // namespace outboxd
