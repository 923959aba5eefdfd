// What the daemon says about PostgreSQL errors is one line and never row data: a statement error
// is its severity, primary message and SQLSTATE (no DETAIL "Failing row contains (...)", no
// CONTEXT); libpq's multi-line connection messages are folded into one bounded line.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <string>

#include "outboxd/pg/connection.hpp"
#include "support/test_database.hpp"

namespace outboxd::test {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr std::string_view kMarker = "SECRET-MARKER-123";

// A session with a temporary table: it lives and dies with the session, nothing to clean up.
struct marker_table {
  sql_session sql{admin_database_url(), "outboxd message test"};
  marker_table() {
    sql.script(
        "CREATE TEMP TABLE guarded ("
        "  id int PRIMARY KEY,"
        "  secret text NOT NULL UNIQUE,"
        "  note text,"
        "  amount int CONSTRAINT amount_is_positive CHECK (amount > 0))");
    sql.exec("INSERT INTO guarded VALUES (1, $1, 'first', 5)", {kMarker});
  }
};

void expect_one_line_without_row_data(const pg::outcome& out) {
  EXPECT_EQ(out.error, pg::errc::query_failed);
  EXPECT_EQ(out.message.find('\n'), std::string::npos) << out.message;
  EXPECT_EQ(out.message.find('\t'), std::string::npos) << out.message;
  EXPECT_EQ(out.message.find(kMarker), std::string::npos) << out.message;
  EXPECT_EQ(out.message.find("Failing row"), std::string::npos) << out.message;
  EXPECT_EQ(out.message.find("DETAIL"), std::string::npos) << out.message;
  EXPECT_LE(out.message.size(), 512u);
  EXPECT_EQ(out.sqlstate.size(), 5u);
  EXPECT_NE(out.message.find("SQLSTATE " + out.sqlstate), std::string::npos) << out.message;
}

TEST(pg_messages, a_not_null_violation_names_the_column_but_not_the_failing_row) {
  marker_table t;
  const auto out =
      t.sql.try_exec("INSERT INTO guarded (id, secret, note) VALUES (2, NULL, $1)", {kMarker});
  std::printf("not null: %s\n", out.message.c_str());
  expect_one_line_without_row_data(out);
  EXPECT_EQ(out.sqlstate, "23502");
  EXPECT_NE(out.message.find("not-null constraint"), std::string::npos) << out.message;
  EXPECT_NE(out.message.find("\"secret\""), std::string::npos) << out.message;
  EXPECT_TRUE(out.message.starts_with("ERROR: ")) << out.message;
}

TEST(pg_messages, a_check_violation_names_the_constraint_but_not_the_failing_row) {
  marker_table t;
  const auto out = t.sql.try_exec("INSERT INTO guarded VALUES (2, 'other', $1, -1)", {kMarker});
  std::printf("check: %s\n", out.message.c_str());
  expect_one_line_without_row_data(out);
  EXPECT_EQ(out.sqlstate, "23514");
  EXPECT_NE(out.message.find("amount_is_positive"), std::string::npos) << out.message;
}

TEST(pg_messages, a_unique_violation_names_the_constraint_but_not_the_key) {
  marker_table t;
  const auto out = t.sql.try_exec("INSERT INTO guarded VALUES (2, $1, 'dup', 1)", {kMarker});
  std::printf("unique: %s\n", out.message.c_str());
  expect_one_line_without_row_data(out);
  EXPECT_EQ(out.sqlstate, "23505");
  EXPECT_NE(out.message.find("guarded_secret_key"), std::string::npos) << out.message;
}

TEST(pg_messages, a_rejected_input_value_is_not_quoted_back) {
  marker_table t;
  const auto as_int = t.sql.try_exec("SELECT $1::int", {kMarker});
  std::printf("bad integer: %s\n", as_int.message.c_str());
  expect_one_line_without_row_data(as_int);
  EXPECT_EQ(as_int.sqlstate, "22P02");
  EXPECT_NE(as_int.message.find("invalid input syntax for type integer"), std::string::npos)
      << as_int.message;

  // The primary message alone (stored with a poison event, logged by the dispatcher) is redacted
  // the same way.
  EXPECT_EQ(as_int.primary, "invalid input syntax for type integer: \"...\"");
  const auto out_of_range = t.sql.try_exec("SELECT ('9' || $1::text)::int", {"99999999999"});
  EXPECT_EQ(out_of_range.sqlstate, "22003");
  EXPECT_EQ(out_of_range.primary, "value \"...\" is out of range for type integer");
  EXPECT_EQ(out_of_range.message.find("999999"), std::string::npos) << out_of_range.message;

  const auto as_json =
      t.sql.try_exec("SELECT $1::jsonb", {std::string("{\"a\": ") + std::string(kMarker)});
  std::printf("bad json: %s\n", as_json.message.c_str());
  expect_one_line_without_row_data(as_json);
  EXPECT_EQ(as_json.sqlstate, "22P02");
}

TEST(pg_messages, an_error_raised_in_a_function_keeps_its_context_out) {
  marker_table t;
  t.sql.script(
      "CREATE FUNCTION pg_temp.fail_with(v text) RETURNS int LANGUAGE plpgsql AS $$ "
      "BEGIN INSERT INTO guarded VALUES (3, NULL, v, 1); RETURN 1; END $$");
  const auto out = t.sql.try_exec("SELECT pg_temp.fail_with($1)", {kMarker});
  std::printf("in a function: %s\n", out.message.c_str());
  expect_one_line_without_row_data(out);
  EXPECT_EQ(out.sqlstate, "23502");
  EXPECT_EQ(out.message.find("PL/pgSQL"), std::string::npos) << out.message;
}

// A loopback port nothing listens on: bound, then released.
std::uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor probe(io, {asio::ip::make_address_v4("127.0.0.1"), 0});
  const auto port = probe.local_endpoint().port();
  probe.close();
  return port;
}

TEST(pg_messages, a_refused_connection_is_reported_on_one_line) {
  asio::io_context io;
  pg::connection connection(io.get_executor());
  const auto url = "postgresql://postgres@127.0.0.1:" + std::to_string(closed_port()) + "/postgres";
  // connect() takes its options by reference: they must outlive the coroutine.
  const pg::connection_options options{.url = url, .application_name = "t", .connect_timeout = 5s};
  auto done = asio::co_spawn(io, connection.connect(options), asio::use_future);
  io.run();
  const auto ec = done.get();
  const auto& message = connection.last_error();
  std::printf("refused: %s\n", message.c_str());
  EXPECT_EQ(ec, pg::errc::connect_failed);
  EXPECT_FALSE(message.empty());
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.find('\t'), std::string::npos) << message;
  EXPECT_NE(message.find("Connection refused"), std::string::npos) << message;
  EXPECT_LE(message.size(), 512u);
  EXPECT_NE(message.back(), ' ');
}

}  // namespace
}  // namespace outboxd::test
