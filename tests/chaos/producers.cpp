#include "chaos/producers.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <random>

#include "outboxd/pg/error.hpp"
#include "support/sql_session.hpp"

namespace outboxd::chaos {
namespace {
using std::chrono::steady_clock;

constexpr std::size_t kPadBytes = 470;  // with the key and the JSON around it, ~500 bytes
constexpr auto kReconnectPause = std::chrono::milliseconds(200);
constexpr auto kSleepSlice = std::chrono::milliseconds(100);

constexpr std::string_view kInsert =
    "INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) "
    "VALUES ($1::uuid, $2, $1::uuid, $3::jsonb)";

}  // namespace

producers::producers(producer_options options, event_ledger& ledger)
    : options_(std::move(options)), ledger_(ledger) {
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this, i] { run(i); });
}

producers::~producers() { stop(); }

void producers::stop() {
  stopping_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void producers::run(int index) {
  std::mt19937_64 random(options_.seed * 1000003 + static_cast<std::uint64_t>(index));
  std::uniform_int_distribution<int> size(1, options_.max_events);
  std::uniform_int_distribution<int> type(0, kEventTypeCount - 1);
  std::uniform_int_distribution<int> letter('a', 'z');
  std::bernoulli_distribution roll_back(options_.rollback_share);
  const double per_thread = options_.rate / options_.threads;
  const auto started = steady_clock::now();
  std::uint64_t offered = 0;
  std::uint32_t sequence = 0;
  std::unique_ptr<test::sql_session> sql;

  while (!stopping_) {
    // Paced by events offered so far, so a stall is caught up on at once (as an IAM's queue of
    // requests would be), but never faster than the rate on average.
    const auto due = started + std::chrono::duration_cast<steady_clock::duration>(
                                   std::chrono::duration<double>(offered / per_thread));
    while (!stopping_ && steady_clock::now() < due) {
      std::this_thread::sleep_for(
          std::min<steady_clock::duration>(kSleepSlice, due - steady_clock::now()));
    }
    if (stopping_) break;
    if (!sql) {
      try {
        sql = std::make_unique<test::sql_session>(options_.url, "chaos producer");
      } catch (const std::exception&) {
        std::this_thread::sleep_for(kReconnectPause);  // PostgreSQL restarting
        continue;
      }
    }
    const int events = size(random);
    std::vector<event_ledger::entry> transaction;
    bool ok = !sql->try_exec("BEGIN").error;
    for (int e = 0; ok && e < events; ++e) {
      const auto t = static_cast<std::uint8_t>(type(random));
      const auto key = event_ledger::key(static_cast<std::uint32_t>(index), ++sequence);
      std::string data = R"({"key":")" + key + R"(","pad":")";
      for (std::size_t i = 0; i < kPadBytes; ++i) data.push_back(static_cast<char>(letter(random)));
      data += "\"}";
      transaction.push_back(
          {.producer = static_cast<std::uint32_t>(index), .sequence = sequence, .type = t});
      ok = !sql->try_exec(kInsert, {options_.realm_id, kEventTypes[t], data}).error;
    }
    offered += static_cast<std::uint64_t>(events);
    const auto mark = [&](event_ledger::fate fate) {
      for (auto& entry : transaction) entry.outcome = fate;
      ledger_.add(transaction);
    };
    if (!ok) {
      // The transaction failed before COMMIT was sent: it cannot have committed.
      ++failed_;
      mark(event_ledger::fate::rolled_back);
      sql.reset();
      continue;
    }
    if (roll_back(random)) {
      mark(event_ledger::fate::rolled_back);
      ++rolled_back_;
      if (sql->try_exec("ROLLBACK").error) sql.reset();
      continue;
    }
    const auto commit = sql->try_exec("COMMIT");
    if (commit.error) {
      // The answer is lost or an error: whether it committed is for the database to say.
      mark(event_ledger::fate::ambiguous);
      ++ambiguous_;
      sql.reset();
      continue;
    }
    mark(event_ledger::fate::committed);
    ++committed_;
  }
}

}  // namespace outboxd::chaos
