// What docs/integrating.md tells an application: the two grants its role needs for the one
// INSERT, and the adapter it shows for an application that is not FerrisKey
// (docs/examples/another-iam-adapter.sql over another-iam-tables.sql): `outboxd migrate
// --adapter-file` installs it, outboxd.subscriptions() returns what the application's tables say,
// and an event the application commits is fanned out to its active, subscribed endpoints only.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "support/dispatch_once.hpp"
#include "support/iam_rows.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {

std::string example_file(const std::string& name) {
  std::ifstream file(std::string(OUTBOXD_EXAMPLES_DIR) + "/" + name);
  std::stringstream content;
  content << file.rdbuf();
  return content.str();
}

TEST(integrating, another_application_subscribes_through_its_own_adapter_file) {
  test_database db({.create_ferriskey_tables = false, .migrate = false});
  auto& sql = db.sql();
  sql.script("CREATE SCHEMA app");
  sql.script(example_file("another-iam-tables.sql"));

  const auto migrated = run_outboxd("migrate --database-url '" + db.url() +
                                    "' --iam-schema app --adapter-file '" OUTBOXD_EXAMPLES_DIR
                                    "/another-iam-adapter.sql'");
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;

  const auto tenant = uuid(1);
  sql.exec(
      "INSERT INTO app.webhook_endpoints (id, tenant_id, url, signing_secret, extra_headers, "
      "active) VALUES ($1, $3, 'https://crm.example/hook', "
      "'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', "
      "'{\"X-Tenant\": \"acme\"}', true), ($2, $3, 'https://old.example/hook', 'whsec_AAAA', NULL, "
      "false)",
      {uuid(10), uuid(11), tenant});
  sql.exec(
      "INSERT INTO app.webhook_endpoint_events (endpoint_id, event_type) "
      "VALUES ($1, 'invoice.paid'), ($2, 'invoice.paid')",
      {uuid(10), uuid(11)});

  // The inactive endpoint is not a subscription; the active one comes with its headers.
  const auto rows = sql.exec(
      "SELECT webhook_id::text || ' ' || realm_id::text || ' ' || event || ' ' || url || ' ' || "
      "headers::text FROM outboxd.subscriptions()");
  ASSERT_EQ(rows.rows(), 1);
  EXPECT_EQ(rows.text(0, 0), uuid(10) + " " + tenant +
                                 R"( invoice.paid https://crm.example/hook {"X-Tenant": "acme"})");

  // The application's one INSERT, fanned out to the active endpoint only.
  const auto event_id = insert_event(sql, tenant, "invoice.paid", R"({"invoice": 42})");
  dispatch_once(db.url());
  const auto deliveries =
      sql.exec("SELECT webhook_id::text FROM outboxd.deliveries WHERE event_id = $1",
               {std::to_string(event_id)});
  ASSERT_EQ(deliveries.rows(), 1);
  EXPECT_EQ(deliveries.text(0, 0), uuid(10));
}

TEST(integrating, the_producer_role_needs_only_usage_on_the_schema_and_insert_on_the_outbox) {
  test_database db;
  auto& sql = db.sql();
  const auto role = db.name() + "_iam";
  sql.script("CREATE ROLE " + role);
  sql.script("GRANT USAGE ON SCHEMA outboxd TO " + role + "; GRANT INSERT ON outboxd.outbox TO " +
             role);
  sql.script("BEGIN; SET LOCAL ROLE " + role);
  const auto inserted = sql.try_exec(
      "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
      "VALUES ($1, 'user.created', $1, '{}'::jsonb)",
      {uuid(1)});
  // Nothing more: reading the outbox is refused.
  const auto read = sql.try_exec("SELECT count(*) FROM outboxd.outbox");
  sql.script("ROLLBACK");
  sql.script("DROP OWNED BY " + role + "; DROP ROLE " + role);
  EXPECT_TRUE(inserted) << inserted.message;
  EXPECT_FALSE(read);
}

}  // namespace
}  // namespace outboxd::test
