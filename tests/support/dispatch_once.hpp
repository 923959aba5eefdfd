#pragma once

#include <string>

#include "outboxd/dispatcher.hpp"

namespace outboxd::test {

// One dispatch transaction on a fresh dispatcher, run to completion on the calling thread:
// fans the outbox out into deliveries without starting any delivery.
dispatch_result dispatch_once(const std::string& url, int batch_size = 500);

}  // namespace outboxd::test
