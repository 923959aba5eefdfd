#include "chaos/claim_audit.hpp"

namespace outboxd::chaos::claim_audit {
namespace {
using std::chrono::system_clock;

constexpr std::string_view kInstall = R"sql(
CREATE SCHEMA chaos_audit;
CREATE TABLE chaos_audit.transitions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  bigint      NOT NULL,
    old_token    bigint      NOT NULL,
    new_token    bigint      NOT NULL,
    old_status   text        NOT NULL,
    new_status   text        NOT NULL,
    old_attempts integer     NOT NULL,
    new_attempts integer     NOT NULL,
    old_holder   text,
    new_holder   text,
    at           timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX transitions_holder_at ON chaos_audit.transitions (old_holder, at);
CREATE INDEX transitions_at ON chaos_audit.transitions (at);
CREATE INDEX transitions_delivery ON chaos_audit.transitions (delivery_id, new_token);
CREATE FUNCTION chaos_audit.record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO chaos_audit.transitions (delivery_id, old_token, new_token, old_status, new_status,
                                         old_attempts, new_attempts, old_holder, new_holder)
    VALUES (NEW.id, OLD.claim_token, NEW.claim_token, OLD.status, NEW.status,
            OLD.attempt_count, NEW.attempt_count, OLD.leased_by, NEW.leased_by);
    RETURN NULL;
END $$;
CREATE TRIGGER chaos_audit AFTER UPDATE ON outboxd.deliveries FOR EACH ROW
    WHEN (OLD.claim_token IS DISTINCT FROM NEW.claim_token
          OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.attempt_count IS DISTINCT FROM NEW.attempt_count)
    EXECUTE FUNCTION chaos_audit.record();
)sql";

constexpr std::string_view kIsOutcome =
    "t.old_token = t.new_token AND t.old_status = 'delivering' AND t.new_status <> 'delivering' "
    "AND t.new_attempts = t.old_attempts + 1";

std::string micros(system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

std::optional<system_clock::time_point> as_time(const pg::result& rows) {
  if (rows.rows() != 1 || rows.is_null(0, 0)) return std::nullopt;
  return system_clock::time_point(std::chrono::microseconds(rows.int64(0, 0)));
}

}  // namespace

void install(test::sql_session& sql) { sql.script(kInstall); }

std::optional<system_clock::time_point> first_outcome_by(test::sql_session& sql,
                                                         const std::string& instance_id,
                                                         system_clock::time_point after) {
  const auto at = micros(after);
  return as_time(
      sql.exec("SELECT (extract(epoch FROM t.at) * 1000000)::bigint FROM chaos_audit.transitions t "
               "WHERE t.old_holder = $1 AND t.at > to_timestamp($2::bigint / 1e6) AND EXISTS ("
               "SELECT 1 FROM chaos_audit.transitions c WHERE c.delivery_id = t.delivery_id "
               "AND c.new_token = t.old_token AND c.new_token > c.old_token AND c.new_holder = $1 "
               "AND c.at > to_timestamp($2::bigint / 1e6)) AND " +
                   std::string(kIsOutcome) + " ORDER BY t.at LIMIT 1",
               {instance_id, at}));
}

std::optional<system_clock::time_point> first_outcome_of_event_after(
    test::sql_session& sql, system_clock::time_point after) {
  const auto at = micros(after);
  return as_time(sql.exec(
      "SELECT (extract(epoch FROM t.at) * 1000000)::bigint FROM chaos_audit.transitions t "
      "JOIN outboxd.deliveries d ON d.id = t.delivery_id "
      "JOIN outboxd.events e ON e.id = d.event_id "
      "WHERE t.at > to_timestamp($1::bigint / 1e6) AND e.created_at > to_timestamp($1::bigint / "
      "1e6) AND " +
          std::string(kIsOutcome) + " ORDER BY t.at LIMIT 1",
      {at}));
}

}  // namespace outboxd::chaos::claim_audit
