#include "support/hostile_receivers.hpp"

namespace outboxd::test {

using namespace std::chrono_literals;

const std::string kGzipBody(
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xab\x56\x4a\x4c\x4e\x4e\x2d\x28\x49\x4d\x51\xb2"
    "\x52\x28\x29\x2a\x4d\xad\x05\x00\xbd\x49\x4d\xcb\x12\x00\x00\x00",
    38);

std::vector<hostile_case> hostile_cases() {
  using kind = reaction::kind;
  reaction gzip{.body = kGzipBody, .headers = {{"Content-Encoding", "gzip"}}};
  return {
      {.name = "endless-headers",
       .what = {.what = kind::endless_headers},
       .error_code = "protocol"},
      {.name = "huge-length", .what = {.what = kind::huge_length}, .status = 200},
      {.name = "endless-chunked", .what = {.what = kind::endless}, .status = 200},
      {.name = "one-byte-per-second",
       .what = {.what = kind::dribble, .body = std::string(100, 'x'), .dribble_interval = 1s},
       .error_code = "timeout",
       .ends_at_deadline = true},
      {.name = "never-answers",
       .what = {.what = kind::hang},
       .error_code = "timeout",
       .ends_at_deadline = true},
      {.name = "closes-mid-response",
       .what = {.what = kind::truncate, .body = std::string(1000, 'x')},
       .error_code = "reset"},
      {.name = "gzip", .what = gzip, .status = 200},
      {.name = "continue-flood",
       .what = {.what = kind::interim_flood, .interim_responses = 1000},
       .error_code = "protocol"},
  };
}

}  // namespace outboxd::test
