#pragma once

// Shared by the libFuzzer targets in this directory (and fuzz_replay_test, which runs their
// inputs in every build): how an input's bytes become the values a parser sees, and how a target
// reports a broken invariant.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace outboxd::fuzz {

inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The input split at NUL bytes into `count` fields, the last one taking the rest; missing fields
// are empty. NUL is the separator because no PostgreSQL text value and no environment entry can
// hold one, so it never needs escaping.
inline std::vector<std::string_view> fields(std::string_view input, std::size_t count) {
  std::vector<std::string_view> out;
  for (std::size_t i = 0; i + 1 < count; ++i) {
    const auto end = input.find('\0');
    out.push_back(input.substr(0, end));
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
  }
  out.push_back(input);
  return out;
}

// An invariant a parser must keep for every input. Aborts, so libFuzzer saves the input and the
// replay test fails on it.
#define OUTBOXD_FUZZ_CHECK(condition)                                                        \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (false)

}  // namespace outboxd::fuzz
