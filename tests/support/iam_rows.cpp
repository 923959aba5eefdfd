#include "support/iam_rows.hpp"

#include <fmt/format.h>

namespace outboxd::test {

std::string uuid(int n) { return fmt::format("00000000-0000-0000-0000-{:012d}", n); }

void add_realm(sql_session& sql, const std::string& realm_id, const std::string& name) {
  sql.exec("INSERT INTO realms (id, name) VALUES ($1, $2)", {realm_id, name});
}

void add_webhook(sql_session& sql, const std::string& webhook_id, const std::string& realm_id,
                 const std::string& endpoint, const std::string& secret,
                 const std::string& headers_json) {
  sql.exec(
      "INSERT INTO webhooks (id, realm_id, endpoint, secret, headers) "
      "VALUES ($1, $2, $3, $4, $5::jsonb)",
      {webhook_id, realm_id, endpoint, secret, headers_json});
}

void subscribe(sql_session& sql, const std::string& webhook_id, const std::string& event) {
  sql.exec(
      "INSERT INTO webhook_subscribers (id, name, webhook_id) VALUES (gen_random_uuid(), $1, $2)",
      {event, webhook_id});
}

std::int64_t insert_event(sql_session& sql, const std::string& realm_id, const std::string& event,
                          const std::string& data_json) {
  return sql.scalar(
      "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
      "VALUES ($1, $2, $1, $3::jsonb) RETURNING id",
      {realm_id, event, data_json});
}

}  // namespace outboxd::test
