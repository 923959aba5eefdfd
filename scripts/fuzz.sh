#!/usr/bin/env bash
# Builds the libFuzzer targets (CMake preset "fuzz": clang, build-fuzz/) and runs each for a
# bounded time, starting from its seed corpus and its regression inputs. scripts/test.sh runs it
# in CI; run it by hand to fuzz one target longer.
#
# Usage: scripts/fuzz.sh [target...]          every target in tests/fuzz/targets.cmake by default
# Env:   OUTBOXD_FUZZ_SECONDS  run time per target (default 25)
#
# A crash stops the run with the input saved under build-fuzz/artifacts/<target>/. Fix the bug,
# then keep the input as tests/fuzz/regressions/<target>/<name>: fuzz_replay_test replays it in
# every build from then on.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds=${OUTBOXD_FUZZ_SECONDS:-25}
targets=("$@")
if ((${#targets[@]} == 0)); then
    read -r -a targets < <(sed -n 's/^set(OUTBOXD_FUZZ_TARGETS \(.*\))$/\1/p' tests/fuzz/targets.cmake)
fi

cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

# Reports from the instrumented code abort the run, so libFuzzer keeps the input.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
status=0
for target in "${targets[@]}"; do
    binary=build-fuzz/tests/fuzz/${target}_fuzz
    # New inputs libFuzzer finds go to the first directory, which stays out of the repository;
    # the seeds and the regressions are only read.
    work=build-fuzz/corpus/$target
    artifacts=build-fuzz/artifacts/$target
    mkdir -p "$work" "$artifacts"
    inputs=("$work" "tests/fuzz/corpus/$target")
    [[ -d tests/fuzz/regressions/$target ]] && inputs+=("tests/fuzz/regressions/$target")
    printf '\n--- %s: %ss\n' "$target" "$seconds"
    if ! "$binary" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "${inputs[@]}" 2>"$artifacts/log"; then
        tail -n 60 "$artifacts/log"
        echo "fuzz.sh: $target failed; the input is in $artifacts/ (keep it under tests/fuzz/regressions/$target/ once fixed)" >&2
        status=1
        continue
    fi
    grep -E '^(Done|#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb)' "$artifacts/log" || true
done
exit "$status"
