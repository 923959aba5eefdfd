#!/usr/bin/env bash
# Builds outboxd with one deliberate defect and runs the reliability harness's short form against
# it: the harness must fail. The defects are patches in tests/chaos/breaks/:
#   claim_fence_removed   an outcome's write no longer checks that its claim still holds the
#                         delivery (status, token, lease)
#   release_lowers_token  handing a delivery back lowers its claim token
#
# Usage: tests/chaos/broken_build.sh <name> [outboxd-chaos options...]
# The broken tree is HEAD (git archive) with the patch applied, built in a temporary directory
# that is removed afterwards; the harness is this tree's own build/tests/outboxd-chaos.
# Exit status: 0 the harness caught the defect (its check failed), 1 it did not, 2 no such
# defect or the build failed.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
name=${1:-}
patch_file="$root/tests/chaos/breaks/$name.patch"
if [[ -z "$name" || ! -f "$patch_file" ]]; then
    echo "usage: $0 <name> [outboxd-chaos options...]; names:" \
        "$(cd "$root/tests/chaos/breaks" && ls -- *.patch | sed 's/\.patch$//' | tr '\n' ' ')" >&2
    exit 2
fi
shift

cd "$root"
# shellcheck source=scripts/lib/deps.sh
source scripts/lib/deps.sh
outboxd_install_deps

launcher=()
if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# Paths relative to one base and the directory left out of the hash, in both builds: the broken
# tree then reuses this tree's objects for every file its patch does not touch.
export CCACHE_NOHASHDIR=1
echo "==> the harness (this tree)"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
CCACHE_BASEDIR="$root" cmake --build build --target outboxd outboxd-chaos
werror=$(sed -n 's/^OUTBOXD_WERROR:BOOL=//p' build/CMakeCache.txt)

work=$(mktemp -d /tmp/outboxd-broken.XXXXXX)
trap 'rm -rf -- "$work"' EXIT
echo "==> outboxd with '$name' ($work)"
mkdir "$work/tree"
git archive HEAD | tar -x -C "$work/tree"
patch -s -d "$work/tree" -p1 <"$patch_file"
cmake -S "$work/tree" -B "$work/tree/build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOUTBOXD_WERROR="${werror:-OFF}" "${launcher[@]}" >/dev/null
export CCACHE_BASEDIR="$work/tree"
cmake --build "$work/tree/build" --target outboxd
unset CCACHE_BASEDIR

echo "==> the short harness against it"
status=0
build/tests/outboxd-chaos --outboxd "$work/tree/build/outboxd" "$@" >"$work/chaos.out" 2>&1 || status=$?
tail -n 45 "$work/chaos.out"
case $status in
    1) echo "broken build '$name': the harness's check FAILED, as it must"; exit 0 ;;
    0) echo "broken build '$name': every check PASSED: the harness did not catch this defect"; exit 1 ;;
    *) echo "broken build '$name': the harness could not run (exit $status)"; exit 2 ;;
esac
