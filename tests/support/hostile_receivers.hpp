#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "support/receiver.hpp"

namespace outboxd::test {

// A gzip stream of {"accepted": true}: a compressed body outboxd must keep as raw bytes.
extern const std::string kGzipBody;

// One way a receiver can misbehave, and how outboxd must record the attempt.
struct hostile_case {
  std::string name;  // also the receiver path: "/" + name
  reaction what;
  std::string error_code;         // expected attempt error code; empty when a status is recorded
  int status = 0;                 // expected status (0 with an error code)
  bool ends_at_deadline = false;  // the attempt can only end by its deadline
};

// Every hostile receiver: headers forever, a 10 GiB Content-Length, an endless chunked body, one
// byte per second, no answer at all, a close mid-response, a gzip body, 1,000 "100 Continue".
std::vector<hostile_case> hostile_cases();

}  // namespace outboxd::test
