#!/usr/bin/env bash
# The reliability harness's long form (docs/reliability.md): installs what is missing, builds
# outboxd and outboxd-chaos, and runs the harness against its own throwaway PostgreSQL.
#
# Usage: scripts/chaos.sh [outboxd-chaos options...]    e.g. scripts/chaos.sh --duration 30m --seed 7
# Without --duration it runs for 30 minutes. `build/tests/outboxd-chaos --help` lists the options.
# Exit status: 0 every check passed, 1 a check failed, 2 bad options, 3 the harness could not run.
set -euo pipefail

cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh

outboxd_install_deps
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target outboxd outboxd-chaos

args=("$@")
if [[ " ${args[*]-} " != *" --duration"* ]]; then
    args=(--duration 30m "${args[@]}")
fi
exec build/tests/outboxd-chaos "${args[@]}"
