// Runs every input kept for the fuzz targets in tests/fuzz/ (seed corpora and the regressions,
// inputs that once crashed a target) through the targets' own code, in every build: a fixed bug
// that comes back fails here, also where clang and libFuzzer are not installed.

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using fuzz_target = int (*)(const std::uint8_t*, std::size_t);

// Each target's LLVMFuzzerTestOneInput, renamed by tests/CMakeLists.txt.
extern "C" int outboxd_fuzz_url(const std::uint8_t*, std::size_t);
extern "C" int outboxd_fuzz_headers_json(const std::uint8_t*, std::size_t);
extern "C" int outboxd_fuzz_retry_after(const std::uint8_t*, std::size_t);
extern "C" int outboxd_fuzz_response_head(const std::uint8_t*, std::size_t);
extern "C" int outboxd_fuzz_config(const std::uint8_t*, std::size_t);
extern "C" int outboxd_fuzz_claimed_row(const std::uint8_t*, std::size_t);

namespace {

namespace fs = std::filesystem;

const std::map<std::string, fuzz_target>& targets() {
  static const std::map<std::string, fuzz_target> all{
      {"url", outboxd_fuzz_url},
      {"headers_json", outboxd_fuzz_headers_json},
      {"retry_after", outboxd_fuzz_retry_after},
      {"response_head", outboxd_fuzz_response_head},
      {"config", outboxd_fuzz_config},
      {"claimed_row", outboxd_fuzz_claimed_row},
  };
  return all;
}

std::vector<std::string> listed_targets() {
  std::vector<std::string> names;
  std::stringstream list(OUTBOXD_FUZZ_TARGET_NAMES);
  for (std::string name; std::getline(list, name, ',');) names.push_back(name);
  return names;
}

std::vector<fs::path> inputs_in(const fs::path& directory) {
  std::vector<fs::path> files;
  if (!fs::is_directory(directory)) return files;
  for (const auto& entry : fs::directory_iterator(directory)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

TEST(fuzz_replay, every_target_in_the_build_is_replayed_and_has_a_seed_corpus) {
  const auto names = listed_targets();
  ASSERT_EQ(names.size(), targets().size());
  for (const auto& name : names) {
    EXPECT_TRUE(targets().contains(name)) << name << " is built but not replayed here";
    EXPECT_FALSE(inputs_in(fs::path(OUTBOXD_FUZZ_DIR) / "corpus" / name).empty())
        << "tests/fuzz/corpus/" << name << " has no seed inputs";
  }
  for (const auto& entry : fs::directory_iterator(fs::path(OUTBOXD_FUZZ_DIR) / "regressions")) {
    if (!entry.is_directory()) continue;
    EXPECT_TRUE(targets().contains(entry.path().filename().string()))
        << entry.path() << " belongs to no fuzz target";
  }
}

class fuzz_replay_target : public testing::TestWithParam<std::string> {};

TEST_P(fuzz_replay_target, corpus_and_regressions_pass) {
  const auto& name = GetParam();
  const auto target = targets().at(name);
  std::size_t replayed = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    for (const auto& path : inputs_in(fs::path(OUTBOXD_FUZZ_DIR) / kind / name)) {
      // A target aborts on a broken invariant; the last line printed names the input.
      std::cerr << "replaying " << path.string() << "\n";
      const auto bytes = read_bytes(path);
      EXPECT_EQ(target(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()), 0)
          << path;
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 0U);
}

INSTANTIATE_TEST_SUITE_P(targets, fuzz_replay_target, testing::ValuesIn(listed_targets()),
                         [](const testing::TestParamInfo<std::string>& target) {
                           return target.param;
                         });

}  // namespace
