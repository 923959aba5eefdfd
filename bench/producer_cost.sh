#!/usr/bin/env bash
# What the outbox INSERT costs a producer's transaction, compared with a plain single-row INSERT of
# the same row into a table without a trigger. pgbench against a throwaway PostgreSQL with durable
# commit settings, because the cost that matters (the NOTIFY at commit) is paid at commit.
#
# Three one-row, one-statement (autocommit) transactions, each with the same ~500-byte jsonb:
#   plain             INSERT INTO bench_plain          (same columns, no trigger)
#   outbox            INSERT INTO outboxd.outbox       (the producer contract, notify trigger on)
#   outbox-no-notify  INSERT INTO outboxd.outbox       with the notify trigger disabled, which
#                     separates the NOTIFY's cost from the cost of the table itself
#
# Usage: [BENCH_CLIENTS=8] [BENCH_SECONDS=20] bench/producer_cost.sh
# A benchmark, not a test: it reports figures and exits 0 whenever it ran, whatever they are.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh

clients=${BENCH_CLIENTS:-8}
seconds=${BENCH_SECONDS:-20}
for value in "$clients" "$seconds"; do
    if [[ ! "$value" =~ ^[1-9][0-9]*$ ]]; then
        echo "BENCH_CLIENTS and BENCH_SECONDS must be positive integers" >&2
        exit 2
    fi
done
# pgbench rejects more threads than clients.
jobs=$((clients < 2 ? clients : 2))

phase() {
    printf '\n==> %s\n' "$*"
}

work=""
cleanup() {
    outboxd_pg_stop
    if [[ -n "$work" ]]; then
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "dependencies"
outboxd_install_deps

phase "postgresql (throwaway, durable mode)"
outboxd_pg_start durable
bindir=$(outboxd_pg_bindir)
work=$(mktemp -d)

# Over TCP on loopback like a real producer, not over the Unix socket.
conn=(-h 127.0.0.1 -p "$OUTBOXD_PG_PORT" -U postgres)
sql() {
    "$bindir/psql" "${conn[@]}" -X -q -v ON_ERROR_STOP=1 -d postgres "$@"
}

phase "schema"
sql -c 'CREATE SCHEMA outboxd;'
# Byte order, not the locale's collation, decides which migration runs first.
mapfile -t migrations < <(printf '%s\n' sql/migrations/*.sql | LC_ALL=C sort)
for migration in "${migrations[@]}"; do
    echo "applying $migration"
    sql -f "$migration"
done

# The comparison table must differ from the outbox in the trigger only: same columns, identity,
# defaults (clock_timestamp() is evaluated per row and is part of the cost) and primary key.
sql -c 'CREATE TABLE bench_plain (LIKE outboxd.outbox INCLUDING ALL);'
mismatches=$(sql -At -c "
    SELECT count(*)
      FROM pg_attribute o
      LEFT JOIN pg_attribute p ON p.attrelid = 'public.bench_plain'::regclass AND p.attname = o.attname
      LEFT JOIN pg_attrdef od ON od.adrelid = o.attrelid AND od.adnum = o.attnum
      LEFT JOIN pg_attrdef pd ON pd.adrelid = p.attrelid AND pd.adnum = p.attnum
     WHERE o.attrelid = 'outboxd.outbox'::regclass AND o.attnum > 0 AND NOT o.attisdropped
       AND (p.attname IS NULL OR p.atttypid <> o.atttypid OR p.attnotnull <> o.attnotnull
            OR p.attidentity <> o.attidentity
            OR pg_get_expr(od.adbin, od.adrelid) IS DISTINCT FROM pg_get_expr(pd.adbin, pd.adrelid))
    UNION ALL
    SELECT count(*) FILTER (WHERE contype = 'p') - 1 FROM pg_constraint
     WHERE conrelid = 'public.bench_plain'::regclass
    UNION ALL
    SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.bench_plain'::regclass AND NOT tgisinternal;
" | awk '{ s += ($1 < 0 ? -$1 : $1) } END { print s + 0 }')
if [[ "$mismatches" == 0 ]]; then
    echo "bench_plain: LIKE outboxd.outbox INCLUDING ALL (identity, defaults and primary key verified)"
else
    echo "bench_plain: LIKE did not copy identity/defaults/primary key faithfully; defining it explicitly"
    sql -c 'DROP TABLE bench_plain;' -c '
        CREATE TABLE bench_plain (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            realm_id    uuid        NOT NULL,
            event       text        NOT NULL,
            resource_id uuid        NOT NULL,
            data        jsonb,
            created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
        );'
fi

# A realistic user.created payload of ~500 bytes. pgbench reads ":name" as a variable reference
# (digits included), so the JSON must not contain a colon directly followed by a letter, digit or
# underscore (no "12:34" times); ": " and "::jsonb" are safe.
payload='{"id": "5b0f3c2e-8a4d-4f6b-9c1e-2d7a6b3f9e10", "username": "jane.doe", "email": "jane.doe@example.com", "email_verified": false, "first_name": "Jane", "last_name": "Doe", "enabled": true, "created_timestamp": 1714567890123, "attributes": {"locale": ["en"], "department": ["engineering"], "employee_number": ["E-104729"]}, "required_actions": ["VERIFY_EMAIL", "CONFIGURE_TOTP"], "groups": ["/staff", "/staff/engineering"], "realm_roles": ["default-roles-acme", "offline_access", "uma_authorization"]}'
values="('0e8b7c61-3f2a-4d5e-b9c8-1a2b3c4d5e6f', 'user.created', '5b0f3c2e-8a4d-4f6b-9c1e-2d7a6b3f9e10', '$payload'::jsonb)"
# One statement per script and no BEGIN/COMMIT: each script execution is one autocommit
# transaction, so no extra round trips blur the difference being measured.
printf 'INSERT INTO bench_plain (realm_id, event, resource_id, data) VALUES %s;\n' "$values" >"$work/plain.sql"
printf 'INSERT INTO outboxd.outbox (realm_id, event, resource_id, data) VALUES %s;\n' "$values" >"$work/outbox.sql"
cp "$work/outbox.sql" "$work/outbox-no-notify.sql"

declare -A tps latency
kinds=(plain outbox outbox-no-notify)

# run_one KIND ROUND: one pgbench run from a comparable starting point.
run_one() {
    local kind=$1 round=$2 log="$work/$1-$2.log"
    # Empty tables and a fresh checkpoint before every run, so no run inherits a bigger index,
    # dirty buffers or a checkpoint due from the run before it.
    sql -c 'TRUNCATE bench_plain, outboxd.outbox RESTART IDENTITY;' -c 'CHECKPOINT;'
    if [[ "$kind" == outbox-no-notify ]]; then
        sql -c 'ALTER TABLE outboxd.outbox DISABLE TRIGGER outbox_notify;'
    fi
    "$bindir/pgbench" "${conn[@]}" -n -c "$clients" -j "$jobs" -T "$seconds" -M prepared \
        -f "$work/$kind.sql" postgres >"$log" 2>&1 || {
        cat "$log" >&2
        return 1
    }
    if [[ "$kind" == outbox-no-notify ]]; then
        sql -c 'ALTER TABLE outboxd.outbox ENABLE TRIGGER outbox_notify;'
    fi
    tps[$kind,$round]=$(awk '/^tps = / { print $3; exit }' "$log")
    latency[$kind,$round]=$(awk '/^latency average = / { print $4; exit }' "$log")
    printf '  round %s  %-17s tps %10.1f   latency avg %8.3f ms   transactions %s, failed %s\n' \
        "$round" "$kind" "${tps[$kind,$round]}" "${latency[$kind,$round]}" \
        "$(awk '/^number of transactions actually processed: / { print $6; exit }' "$log")" \
        "$(awk '/^number of failed transactions: / { print $5; exit }' "$log")"
}

phase "benchmark"
printf 'command: BENCH_CLIENTS=%s BENCH_SECONDS=%s bash bench/producer_cost.sh\n' "$clients" "$seconds"
printf 'pgbench: pgbench -h 127.0.0.1 -p PORT -U postgres -n -c %s -j %s -T %s -M prepared -f SCRIPT postgres\n' \
    "$clients" "$jobs" "$seconds"
echo "machine:"
echo "  nproc:    $(nproc)"
echo "  cpu:      $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo || true)"
echo "  memory:   $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "  kernel:   $(uname -srm)"
echo "  postgres: $("$bindir/postgres" --version)"
echo "  storage:  $(df -PT "$OUTBOXD_PG_DIR" | awk 'NR == 2 { print $2 " (" $1 ")" }') for the cluster in $OUTBOXD_PG_DIR"
echo "  settings: $(sql -At -c "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings
                               WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes',
                                              'wal_sync_method', 'shared_buffers', 'max_connections')")"
echo
# Interleaved rounds (a, b, c, a, b, c): slow drift of the machine (other tenants, page cache,
# file system state) spreads over all three kinds instead of biasing whichever ran last.
for round in 1 2; do
    for kind in "${kinds[@]}"; do
        run_one "$kind" "$round"
    done
done

phase "results (transactions per second)"
{
    printf '%s\t%s\t%s\t%s\n' run plain outbox outbox-no-notify
    for round in 1 2; do
        printf '%s\t%s\t%s\t%s\n' "$round" "${tps[plain,$round]}" "${tps[outbox,$round]}" \
            "${tps[outbox-no-notify,$round]}"
    done
} | awk -F'\t' '
    # The per-round cost ratios show how far the two rounds agree, i.e. how noisy the machine is.
    NR == 1 { printf "%-8s %12s %12s %18s   %s\n", $1, $2, $3, $4, "cost ratio outbox / no-notify vs plain"; next }
    {
        printf "%-8s %12.1f %12.1f %18.1f   %.3fx / %.3fx\n", $1, $2, $3, $4, $2 / $3, $2 / $4
        a += $2; b += $3; c += $4; n++
    }
    END {
        a /= n; b /= n; c /= n
        printf "%-8s %12.1f %12.1f %18.1f   %.3fx / %.3fx\n", "average", a, b, c, a / b, a / c
        # Cost per transaction is 1/TPS, so the cost ratio is the inverse of the TPS ratio.
        printf "\ncost per transaction relative to plain (plain TPS / TPS, averages):\n"
        printf "  outbox / plain:                  %.3fx\n", a / b
        printf "  outbox-without-notify / plain:   %.3fx\n", a / c
    }'
