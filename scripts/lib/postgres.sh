# shellcheck shell=bash
# A throwaway PostgreSQL server for tests and benchmarks: its own cluster in a temporary directory,
# reachable only on 127.0.0.1, trust authentication, gone after outboxd_pg_stop.
#
# Sourced, not executed: it defines functions only and deliberately does not `set -euo pipefail`,
# so sourcing it never changes the options of the caller's shell (including an interactive one).
#
# Typical use:
#   source scripts/lib/postgres.sh
#   outboxd_pg_start test && trap outboxd_pg_stop EXIT
#   psql "$OUTBOXD_PG_URL" -c 'select 1'

# Newest installed server, so a machine with several major versions tests against the latest.
outboxd_pg_bindir() {
    local bindir
    bindir=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ ! -x "$bindir/pg_ctl" ]]; then
        echo "outboxd_pg_bindir: no PostgreSQL server under /usr/lib/postgresql/*/bin" >&2
        return 1
    fi
    printf '%s\n' "$bindir"
}

# Runs a command as the OS user that owns the cluster. initdb and postgres refuse to run as root,
# so root hands the work to the `postgres` user; anyone else simply runs it as themselves.
# The subshell's cd matters: the caller's working directory (often /root) may be unreadable by
# `postgres`, and initdb/pg_ctl fail when they cannot resolve the current directory.
_outboxd_pg_as_owner() {
    (
        cd "$OUTBOXD_PG_DIR" || exit 1
        if ((EUID == 0)); then
            runuser -u postgres -- "$@"
        else
            "$@"
        fi
    )
}

# A port that nothing on 127.0.0.1 accepts connections on right now. A connection that succeeds
# means the port is taken. Another process can still grab the port before the server binds it,
# which is why outboxd_pg_start retries on a bind failure.
_outboxd_pg_free_port() {
    local port attempt
    for attempt in $(seq 1 100); do
        # Well above the registered range and below Linux's default ephemeral range (32768+), so
        # outgoing connections of other processes rarely land on it.
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    echo "_outboxd_pg_free_port: no free port found after $attempt probes" >&2
    return 1
}

# outboxd_pg_start [test|durable]
#   test    (default) fsync, synchronous_commit and full_page_writes off: a crash loses the cluster,
#           which is fine for a cluster that lives for one test run, and tests run much faster.
#   durable PostgreSQL's own defaults for those settings, so benchmarks pay real commit costs.
# Sets OUTBOXD_PG_DIR, OUTBOXD_PG_PORT and OUTBOXD_PG_URL in the calling shell, unexported: they
# are no setting of outboxd, which refuses unknown OUTBOXD_* variables in its environment.
outboxd_pg_start() {
    local mode=${1:-test}
    local bindir dir port attempt
    local -a mode_opts

    case "$mode" in
        test) mode_opts=(-c fsync=off -c synchronous_commit=off -c full_page_writes=off) ;;
        durable) mode_opts=() ;;
        *)
            echo "outboxd_pg_start: unknown mode '$mode' (expected test or durable)" >&2
            return 2
            ;;
    esac

    if [[ -n "${OUTBOXD_PG_DIR:-}" && -d "$OUTBOXD_PG_DIR" ]]; then
        echo "outboxd_pg_start: a server is already running in $OUTBOXD_PG_DIR" >&2
        return 1
    fi

    bindir=$(outboxd_pg_bindir) || return 1

    # Under /tmp rather than $TMPDIR: the directory must be reachable by the `postgres` user, and a
    # caller's TMPDIR may sit inside a private home directory.
    dir=$(mktemp -d /tmp/outboxd-pg.XXXXXX) || return 1
    OUTBOXD_PG_DIR=$dir
    if ((EUID == 0)); then
        chown postgres: "$dir" || { outboxd_pg_stop; return 1; }
    fi

    # C locale and UTF-8 encoding: identical behaviour on every machine, whatever its locale.
    if ! _outboxd_pg_as_owner "$bindir/initdb" -D "$dir/data" --auth=trust -U postgres \
        --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
        echo "outboxd_pg_start: initdb failed:" >&2
        tail -n 40 "$dir/initdb.log" >&2
        outboxd_pg_stop
        return 1
    fi

    for attempt in $(seq 1 10); do
        port=$(_outboxd_pg_free_port) || { outboxd_pg_stop; return 1; }
        # A fresh log per attempt, so a failure shows this attempt's reason only. Removed rather
        # than truncated: a file created here by root could not be appended to by `postgres`.
        rm -f -- "$dir/log"
        # The socket lives in our private directory: no clash with a system server's
        # /var/run/postgresql, and no write access needed there.
        if _outboxd_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='$dir' -c max_connections=200 -c shared_buffers=256MB ${mode_opts[*]}" \
            start >"$dir/pg_ctl.log" 2>&1; then
            OUTBOXD_PG_PORT=$port
            OUTBOXD_PG_URL="postgresql://postgres@127.0.0.1:$port/postgres"
            return 0
        fi

        # pg_ctl -w gives up after its timeout while the server may still come up; make sure no
        # half-started server survives before retrying or giving up.
        _outboxd_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true

        # Only a lost race for the port is worth another try; anything else (shared memory,
        # disk, configuration) would fail the same way ten times over.
        if ! grep -qE 'could not bind|could not create any TCP/IP sockets|Address already in use' "$dir/log"; then
            break
        fi
        echo "outboxd_pg_start: port $port was taken, retrying on another port" >&2
    done

    echo "outboxd_pg_start: PostgreSQL did not start (attempt $attempt); server log tail:" >&2
    tail -n 40 "$dir/log" "$dir/pg_ctl.log" >&2
    outboxd_pg_stop
    return 1
}

# Stops the server started by outboxd_pg_start and deletes its directory. A no-op when nothing was
# started or it was already stopped, so it is safe in EXIT/INT/TERM traps and to call twice.
outboxd_pg_stop() {
    local dir=${OUTBOXD_PG_DIR:-}
    local bindir

    # Only ever delete a directory this library created.
    if [[ -n "$dir" && "$dir" == /tmp/outboxd-pg.* && -d "$dir" ]]; then
        if [[ -f "$dir/data/postmaster.pid" ]] && bindir=$(outboxd_pg_bindir 2>/dev/null); then
            # Fast: roll back sessions and shut down cleanly; immediate only if that hangs or fails.
            _outboxd_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
                _outboxd_pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 ||
                true
        fi
        rm -rf -- "$dir"
    fi

    unset OUTBOXD_PG_DIR OUTBOXD_PG_PORT OUTBOXD_PG_URL
    return 0
}
