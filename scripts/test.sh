#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test against a throwaway
# PostgreSQL. CI runs exactly this (via .ci/run), so a green local run means a green CI run.
#
# Usage: scripts/test.sh [ctest args...]     e.g. scripts/test.sh -R dispatcher
# Env:   CI  when non-empty, warnings are errors (-DOUTBOXD_WERROR=ON).
#        OUTBOXD_TEST_DEEP  when non-empty, also the sanitizer builds (asan-ubsan: every test but
#          chaos; tsan: the same) and the bounded fuzz runs. Not yet part of CI: these phases
#          have not had their first full run, and a red phase must not turn every CI run red.
#        OUTBOXD_FUZZ_SECONDS  run time of each fuzz target (default 25, scripts/fuzz.sh).
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh

phase_started=
phase() {
    # Each phase's wall time, so the cost of every check stays visible in the CI log.
    [[ -n "$phase_started" ]] && printf '    (%ds)\n' "$((SECONDS - phase_started))"
    phase_started=$SECONDS
    printf '\n==> %s\n' "$*"
}

phase "dependencies"
outboxd_install_deps
# helm_chart_test's tools (tests/helm/check_chart.sh).
outboxd_go_install helm.sh/helm/v3/cmd/helm@v3.22.0
outboxd_pip_install kubernetes-validate==1.37.0
# The example receivers of docs/receiving.md (receiver_examples_pgtest).
outboxd_pip_install standardwebhooks==1.1.0 && outboxd_npm_install standardwebhooks@1.1.1 ||
    echo "standardwebhooks not installed: receiver_examples_pgtest will fail" >&2

phase "configure"
configure_args=(-S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
# Warnings fail CI builds only: a new compiler's new warning should not stop a developer's run.
# OFF is passed explicitly because CMake caches options: a local CI=1 run would otherwise leave
# -Werror switched on in build/ for every later run.
if [[ -n "${CI:-}" ]]; then
    configure_args+=(-DOUTBOXD_WERROR=ON)
else
    configure_args+=(-DOUTBOXD_WERROR=OFF)
fi
cmake "${configure_args[@]}"

phase "build"
cmake --build build

phase "postgresql (throwaway, test mode)"
# Stop the server however the script ends. exit from the INT/TERM traps runs the EXIT trap, and
# the 128+signal status tells the caller the run was interrupted rather than failed.
trap outboxd_pg_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
outboxd_pg_start test
echo "listening on 127.0.0.1:$OUTBOXD_PG_PORT"
export OUTBOXD_TEST_DATABASE_URL="$OUTBOXD_PG_URL"
export OUTBOXD_TEST_TOOLS_DIR="$OUTBOXD_TOOLS_DIR"

phase "test"
status=0
ctest --test-dir build --output-on-failure --timeout 600 -j2 "$@" || status=$?

if [[ -n "${OUTBOXD_TEST_DEEP:-}" ]]; then
    # The whole suite again with AddressSanitizer and UndefinedBehaviorSanitizer; the pgtests run
    # the sanitized daemon (build-asan/outboxd). Chaos tests are timing-heavy: left to the main run.
    phase "asan-ubsan: build (build-asan)"
    cmake --preset asan-ubsan
    cmake --build --preset asan-ubsan
    phase "asan-ubsan: test (every label but chaos)"
    ctest --preset asan-ubsan "$@" || status=$((status ? status : $?))

    # The same suite with ThreadSanitizer: the resolver threads, the admin server, and the tests
    # that read a running daemon's state from their own thread.
    phase "tsan: build (build-tsan)"
    cmake --preset tsan
    cmake --build --preset tsan
    phase "tsan: test (every label but chaos)"
    ctest --preset tsan "$@" || status=$((status ? status : $?))

    phase "fuzz: build (build-fuzz, clang) and run each target for ${OUTBOXD_FUZZ_SECONDS:-25}s"
    bash scripts/fuzz.sh || status=$((status ? status : $?))
fi

phase "done (exit status $status)"
exit "$status"
