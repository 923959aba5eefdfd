#pragma once

#include <string>

#include "support/sql_session.hpp"

namespace outboxd::test {

// Rows in FerrisKey's tables and in the outbox, as the IAM would write them.
void add_realm(sql_session& sql, const std::string& realm_id, const std::string& name);
// FerrisKey's form of secret: 64 hex characters, used as ASCII bytes.
inline const std::string kFerrisKeySecret =
    "3f6c1b7e9a2d4c8f0e5b7a9c1d3e5f7081a2b3c4d5e6f708192a3b4c5d6e7f80";

void add_webhook(sql_session& sql, const std::string& webhook_id, const std::string& realm_id,
                 const std::string& endpoint = "http://127.0.0.1:9/hook",
                 const std::string& secret = kFerrisKeySecret,
                 const std::string& headers_json = "{}");
void subscribe(sql_session& sql, const std::string& webhook_id, const std::string& event);

// The producer contract: one INSERT, committed by itself. Returns the outbox id.
std::int64_t insert_event(sql_session& sql, const std::string& realm_id, const std::string& event,
                          const std::string& data_json = "{}");

// A deterministic UUID for readable tests: uuid(7) = "00000000-0000-0000-0000-000000000007".
std::string uuid(int n);

}  // namespace outboxd::test
