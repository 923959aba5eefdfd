#include "outboxd/admin/status.hpp"

#include <boost/program_options.hpp>
#include <iostream>

#include "outboxd/admin/output.hpp"
#include "outboxd/admin/session.hpp"
#include "outboxd/log.hpp"

namespace outboxd::admin {
namespace po = boost::program_options;

namespace {

// One statement, one snapshot. Unfinished deliveries are counted through the partial index
// deliveries_due; dead and cancelled ones need one pass over outboxd.deliveries (no index on
// finished history: it would cost every write).
constexpr std::string_view kStatus = R"sql(
SELECT (SELECT count(*) FROM outboxd.outbox),
       (SELECT (extract(epoch FROM now() - min(created_at)) * 1000)::bigint FROM outboxd.outbox),
       (SELECT count(*) FROM outboxd.deliveries
        WHERE status = 'pending' AND next_attempt_at <= now()),
       (SELECT count(*) FROM outboxd.deliveries WHERE status = 'pending'),
       (SELECT count(*) FROM outboxd.deliveries WHERE status = 'delivering'),
       finished.dead, finished.cancelled,
       (SELECT count(*) FROM outboxd.disabled_webhooks),
       (SELECT count(*) FROM outboxd.poison_events),
       (SELECT count(*) FROM outboxd.open_circuits WHERE open_until > now())
FROM (SELECT count(*) FILTER (WHERE status = 'dead') AS dead,
             count(*) FILTER (WHERE status = 'cancelled') AS cancelled
      FROM outboxd.deliveries) AS finished
)sql";

int status(const std::vector<std::string>& args) {
  status_flags flags;
  const auto config = parse_database_command(args, flags.describe(), {});
  setup_logging(config.log_level, config.log_format);
  session db(config.database, "outboxd status");
  const auto rows = db.query(kStatus);
  const auto value = [&rows](int column) { return std::string(rows.text(0, column)); };

  if (flags.json) {
    json_writer json;
    json.begin_object()
        .key("outbox_backlog")
        .number(value(0))
        .key("oldest_undispatched_age_ms")
        .number(value(1))
        .key("deliveries")
        .begin_object()
        .key("due")
        .number(value(2))
        .key("pending")
        .number(value(3))
        .key("delivering")
        .number(value(4))
        .key("dead")
        .number(value(5))
        .key("cancelled")
        .number(value(6))
        .end_object()
        .key("disabled_webhooks")
        .number(value(7))
        .key("poison_events")
        .number(value(8))
        .key("open_circuits")
        .number(value(9))
        .end_object();
    std::cout << json.text() << "\n";
    return kExitOk;
  }
  const auto oldest = rows.is_null(0, 1) ? std::string("-") : format_age(rows.int64(0, 1));
  print_fields(std::cout, {{"outbox backlog", value(0) + " event(s)"},
                           {"oldest undispatched event", oldest},
                           {"due deliveries", value(2)},
                           {"pending deliveries", value(3)},
                           {"delivering", value(4)},
                           {"dead deliveries", value(5)},
                           {"cancelled deliveries", value(6)},
                           {"disabled webhooks", value(7)},
                           {"poison events", value(8)},
                           {"open circuits", value(9)}});
  return kExitOk;
}

}  // namespace

po::options_description status_flags::describe() {
  po::options_description options("outboxd status");
  options.add_options()("json", po::bool_switch(&json), "print one JSON object");
  return options;
}

int run_status(const std::vector<std::string>& args) { return run_command("status", status, args); }

}  // namespace outboxd::admin
