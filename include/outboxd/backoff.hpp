#pragma once

#include <chrono>

namespace outboxd {

struct backoff_options {
  std::chrono::milliseconds initial{100};
  std::chrono::milliseconds max{10'000};
};

// Exponential reconnect delays with jitter, so replicas that lost PostgreSQL together do not
// come back in lockstep: each delay is drawn from [d/2, d], and d doubles up to max.
class backoff {
 public:
  explicit backoff(backoff_options options);
  std::chrono::milliseconds next();
  void reset();

 private:
  backoff_options options_;
  std::chrono::milliseconds current_;
};

}  // namespace outboxd
