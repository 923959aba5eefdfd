#!/usr/bin/env bash
# The demo: a throwaway PostgreSQL with FerrisKey's tables, a receiver that verifies both
# signature schemes, `outboxd run`, and a dozen IAM-like events committed one transaction each.
# Shows what the receiver got, a retry, and the final bookkeeping; stops everything it started.
#
# Usage: scripts/demo.sh          (as root on Debian: installs what it needs)
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh

phase() { printf '\n==> %s\n' "$*"; }

readonly secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
workdir=$(mktemp -d)
receiver_pid=""
daemon_pid=""

cleanup() {
  [[ -n "$daemon_pid" ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [[ -n "$receiver_pid" ]] && kill -TERM "$receiver_pid" 2>/dev/null && wait "$receiver_pid" 2>/dev/null
  outboxd_pg_stop
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "dependencies and build"
outboxd_install_deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
cmake --build build --target outboxd outboxd-demo-receiver

phase "throwaway PostgreSQL with FerrisKey's tables"
outboxd_pg_start test
db="$OUTBOXD_PG_URL"
psql_q() { psql "$db" -v ON_ERROR_STOP=1 -q "$@"; }
psql_q -f tests/fixtures/ferriskey_schema.sql

phase "receiver"
build/tests/outboxd-demo-receiver --secret "$secret" --flaky-path /flaky --flaky-failures 2 \
  > "$workdir/receiver.log" 2>&1 &
receiver_pid=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$workdir/receiver.log" 2>/dev/null && break
  sleep 0.05
done
receiver_url=$(sed -n 's/^listening on //p' "$workdir/receiver.log" | head -n 1)
[[ -n "$receiver_url" ]] || { cat "$workdir/receiver.log"; echo "receiver did not start"; exit 1; }
port=${receiver_url##*:}
echo "receiver at $receiver_url"
psql_q -v port="$port" -v secret="$secret" -f scripts/demo/iam.sql
echo "realm acme: webhooks crm (/crm), audit (/flaky: fails twice first), search (/search)"

phase "outboxd migrate, then outboxd run"
export OUTBOXD_DATABASE_URL="$db"
build/outboxd migrate
# Loopback receivers must be allowed explicitly; quick retries so the demo shows one.
build/outboxd run --allow-cidr 127.0.0.0/8 --retry-schedule 1s,2s,5s --poll-interval 500ms \
  > "$workdir/outboxd.log" 2>&1 &
daemon_pid=$!

phase "the IAM commits 12 events (one INSERT each, in its own transaction)"
while IFS= read -r line; do
  # (psql expands :'line' only in script input, not in -c.)
  psql_q -v line="$line" <<'SQL'
INSERT INTO outboxd.outbox (realm_id, event, resource_id, data)
SELECT (j->>'realm_id')::uuid, j->>'event', (j->>'resource_id')::uuid, j->'data'
FROM (SELECT :'line'::jsonb AS j) AS sample;
SQL
done < scripts/demo/sample-events.jsonl
echo "committed $(wc -l < scripts/demo/sample-events.jsonl) events"

phase "waiting for every delivery to finish (at most 60 s)"
unfinished="SELECT count(*) FROM outboxd.deliveries WHERE status IN ('pending', 'delivering')"
for _ in $(seq 1 600); do
  left=$(psql "$db" -tAc "$unfinished")
  total=$(psql "$db" -tAc "SELECT count(*) FROM outboxd.deliveries")
  [[ "$left" == 0 && "$total" -gt 0 ]] && break
  sleep 0.1
done

phase "what the receiver got (event data is never printed: it can hold personal data)"
cat "$workdir/receiver.log"

phase "deliveries by webhook and status"
psql "$db" -P pager=off -c "
  SELECT w.name AS webhook, d.status, count(*) AS deliveries, max(d.attempt_count) AS max_attempts
  FROM outboxd.deliveries d JOIN webhooks w ON w.id = d.webhook_id
  GROUP BY 1, 2 ORDER BY 1, 2"

phase "the retried delivery: every attempt on record"
psql "$db" -P pager=off -c "
  SELECT d.id AS delivery, e.event, a.attempt_number AS attempt, a.status_code,
         a.succeeded, a.duration_ms, to_char(a.started_at, 'HH24:MI:SS.MS') AS started
  FROM outboxd.attempts a
  JOIN outboxd.deliveries d ON d.id = a.delivery_id
  JOIN outboxd.events e ON e.id = d.event_id
  WHERE d.attempt_count > 1
  ORDER BY d.id, a.attempt_number
  LIMIT 12"

phase "outboxd status (the admin command operators use)"
build/outboxd status

phase "daemon log"
cat "$workdir/outboxd.log"
