#!/usr/bin/env bash
# What can be checked of the container image without building it (no base image can be pulled
# here): the Dockerfile's package lists against the binary the test suite built, on this Debian 12
# machine, whose package database is bookworm's.
#
#  1. runtime stage: every library the binary links directly (ELF NEEDED) comes from a package
#     the stage installs by name, and every library `ldd` finds comes from one of those or from
#     their dependencies (dpkg's Depends and Pre-Depends, recursively);
#  2. runtime stage: the commands it runs itself (bash for the health check, groupadd, useradd)
#     come from packages of priority "required", which every bookworm-slim image has;
#  3. build stage: every package of scripts/lib/deps.sh that the daemon's build reads (headers,
#     link libraries, CMake package files, the toolchain) is installed by name;
#  4. the build context that .dockerignore lets in configures (CMake, tests off);
#  5. the image's settings: outboxd as ENTRYPOINT, a numeric non-root USER, the admin server on
#     every interface, and a HEALTHCHECK whose script, with bash builtins only, reports a live
#     daemon healthy and a stopped one unhealthy; the image's environment does not upset the
#     other commands.
#
# Usage: check_runtime_packages.sh OUTBOXD_BINARY SOURCE_DIR BUILD_DIR
set -euo pipefail

binary=$1
source_dir=$2
build_dir=$3
dockerfile=$source_dir/Dockerfile
failures=0

fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

pass() {
    echo "ok: $*"
}

if [[ ! -r /etc/debian_version || $(cut -d. -f1 /etc/debian_version) != 12 ]]; then
    echo "FAIL: this check maps files to Debian 12 (bookworm) packages; this machine is not Debian 12" >&2
    exit 1
fi

scratch=$(mktemp -d)
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]]; then kill -9 "$daemon_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT

# ---- the Dockerfile, one logical line per instruction (continuations joined) -----------------
logical_lines() {
    sed -e ':join' -e '/\\$/{N; s/\\\n/ /; b join}' "$dockerfile" | grep -v '^[[:space:]]*#' || true
}

# Lines of one stage: "build" is the stage named so, "runtime" the last one.
stage_lines() {
    local which=$1
    logical_lines | awk -v which="$which" '
        /^FROM[[:space:]]/ { stage++; named = ($0 ~ /[[:space:]]AS[[:space:]]+build([[:space:]]|$)/) }
        { if (which == "build" ? named : stage == last) print }
    ' last="$(logical_lines | grep -c '^FROM[[:space:]]')"
}

# The package names of a stage's `apt-get install` commands.
stage_packages() {
    stage_lines "$1" | grep -o 'apt-get install[^&]*' | sed 's/^apt-get install//' |
        tr ' ' '\n' | grep -v -e '^-' -e '^$' | sort -u
}

mapfile -t runtime_packages < <(stage_packages runtime)
mapfile -t build_packages < <(stage_packages build)
((${#runtime_packages[@]} > 0)) || fail "no apt-get install in the runtime stage of $dockerfile"
((${#build_packages[@]} > 0)) || fail "no apt-get install in the build stage of $dockerfile"
echo "runtime stage installs: ${runtime_packages[*]}"
echo "build stage installs: ${build_packages[*]}"

# ---- packages -------------------------------------------------------------------------------
# The package owning a file, or nothing. dpkg knows some files under /lib and others under
# /usr/lib (merged /usr), and names them pkg:arch.
owner_of() {
    local file=$1 candidate found
    for candidate in "$file" "/usr$file" "${file#/usr}" "$(realpath -m "$file")"; do
        [[ -n $candidate ]] || continue
        found=$(dpkg -S "$candidate" 2>/dev/null | grep -v '^diversion' | head -n1 | cut -d: -f1) || true
        if [[ -n $found ]]; then
            echo "${found%%,*}"
            return 0
        fi
    done
}

# Owners of many files at once (one dpkg run), unique; files no package owns are printed to fd 3.
owners_of_files() {
    local -a files
    mapfile -t files
    ((${#files[@]} > 0)) || return 0
    printf '%s\n' "${files[@]}" | xargs -d '\n' dpkg -S 2>/dev/null | grep -v '^diversion' |
        cut -d: -f1 | tr ',' '\n' | sed 's/^ *//' | sort -u
}

installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

# Direct dependencies of an installed package (Depends and Pre-Depends; every installed
# alternative of an "a | b"), without versions or architectures.
direct_dependencies() {
    dpkg-query -W -f='${Depends}, ${Pre-Depends}\n' "$1" 2>/dev/null | tr ',|' '\n\n' |
        sed -e 's/([^)]*)//g' -e 's/:[a-z0-9]*//g' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u |
        while read -r dependency; do installed "$dependency" && echo "$dependency"; done || true
}

# Every package the given ones bring, themselves included.
closure() {
    local -A seen=()
    local -a queue=("$@")
    local package dependency
    while ((${#queue[@]} > 0)); do
        package=${queue[0]}
        queue=("${queue[@]:1}")
        [[ -n ${seen[$package]:-} ]] && continue
        seen[$package]=1
        while read -r dependency; do
            [[ -n $dependency && -z ${seen[$dependency]:-} ]] && queue+=("$dependency")
        done < <(direct_dependencies "$package")
    done
    printf '%s\n' "${!seen[@]}" | sort
}

contains() {
    local wanted=$1 item
    shift
    for item in "$@"; do [[ $item == "$wanted" ]] && return 0; done
    return 1
}

# ---- 1. runtime libraries -------------------------------------------------------------------
for package in "${runtime_packages[@]}"; do
    installed "$package" || fail "runtime package $package is not a bookworm package installed here (is the name right?)"
done

ldd_output=$(ldd "$binary")
if grep -q 'not found' <<<"$ldd_output"; then
    fail "ldd finds no file for: $(grep 'not found' <<<"$ldd_output" | tr -s ' \t' ' ')"
fi
declare -A library_path=()
while read -r name arrow path _; do
    [[ $arrow == "=>" && $path == /* ]] && library_path[$name]=$path
done <<<"$ldd_output"

# check_library NAME PATH WHERE PACKAGE...: the package owning PATH must be one of PACKAGE...
check_library() {
    local library=$1 path=$2 where=$3 package
    shift 3
    package=$(owner_of "$path")
    if [[ -z $package ]]; then
        fail "$library ($path) belongs to no Debian package: outboxd links only Debian's libraries"
    elif contains "$package" "$@"; then
        pass "$library from $package, $where"
    else
        fail "$library ($path) comes from $package, not $where"
    fi
}

mapfile -t needed < <(objdump -p "$binary" | awk '$1 == "NEEDED" { print $2 }')
((${#needed[@]} > 0)) || fail "objdump finds no NEEDED library in $binary"
for library in "${needed[@]}"; do
    if [[ -z ${library_path[$library]:-} ]]; then
        fail "ldd does not resolve $library"
        continue
    fi
    check_library "$library" "${library_path[$library]}" "a package the runtime stage installs by name" \
        "${runtime_packages[@]}"
done

mapfile -t runtime_closure < <(closure "${runtime_packages[@]}")
for library in "${!library_path[@]}"; do
    contains "$library" "${needed[@]}" && continue
    check_library "$library" "${library_path[$library]}" "(indirect) a runtime package or one of their dependencies" \
        "${runtime_closure[@]}"
done

# ---- 2. what the runtime stage runs itself exists in bookworm-slim ---------------------------
for command in bash groupadd useradd; do
    package=$(owner_of "$(command -v "$command" || echo "/usr/sbin/$command")")
    priority=$(dpkg-query -W -f='${Priority}' "$package" 2>/dev/null || true)
    if [[ $priority == required ]] || contains "$package" "${runtime_closure[@]}"; then
        pass "$command from $package (priority ${priority:-?}): in bookworm-slim"
    else
        fail "$command comes from $package (priority ${priority:-?}), which bookworm-slim may lack"
    fi
done

# ---- 3. build stage against deps.sh ---------------------------------------------------------
# shellcheck source=scripts/lib/deps.sh
source "$source_dir/scripts/lib/deps.sh"

# 4 first: the context's own configure lists the CMake files the daemon's build reads, without
# the test suite's.
context=$scratch/context
mkdir -p "$context"
while read -r line; do
    case $line in
        '' | '#'* | '*') ;;
        '!'*)
            entry=${line#!}
            entry=${entry%/}
            mkdir -p "$context/$(dirname "$entry")"
            cp -a "$source_dir/$entry" "$context/$entry"
            ;;
        *) fail ".dockerignore: '$line' is neither '*' nor '!path', which this check reads" ;;
    esac
done <"$source_dir/.dockerignore"
if cmake -S "$context" -B "$context/build" -G Ninja -DOUTBOXD_BUILD_TESTS=OFF \
    >"$scratch/configure.log" 2>&1; then
    pass "the build context .dockerignore lets in configures with tests off"
else
    fail "the build context .dockerignore lets in does not configure:"
    cat "$scratch/configure.log" >&2
fi

# What the daemon's build reads: headers of its objects, its link libraries, the CMake package
# files its configure reads, and the tools.
{
    (cd "$build_dir" && ninja -t deps) | awk '
        /^[^ ].*: #deps/ { daemon = ($1 ~ /^CMakeFiles\/outboxd(_core)?\.dir\//) }
        daemon && /^    \// { print $1 }'
    sed -n '/^build outboxd:/,/^$/p' "$build_dir/build.ninja" | sed -n 's/^  LINK_LIBRARIES = //p' |
        tr ' ' '\n' | grep '^/'
    if [[ -f $context/build/build.ninja ]]; then
        grep '^build build.ninja: RERUN_CMAKE' "$context/build/build.ninja" | tr ' ' '\n' |
            grep '^/usr/'
    fi
    for tool in cmake ninja g++ pkg-config strip; do command -v "$tool"; done
} | grep -v -e "^$source_dir/" -e "^$build_dir/" -e "^$scratch/" | sort -u >"$scratch/build_files"
mapfile -t build_used < <(owners_of_files <"$scratch/build_files")
echo "the daemon's build reads files of: ${build_used[*]}"
((${#build_used[@]} > 5)) || fail "found too few packages the build reads (${#build_used[@]}): is $build_dir a Ninja build?"

for package in "${OUTBOXD_DEBIAN_PACKAGES[@]}"; do
    # Needed when the build reads its files, or it is a transitional package for one that does
    # (pkg-config brings pkgconf).
    used=
    if contains "$package" "${build_used[@]}"; then
        used=$package
    else
        while read -r dependency; do
            if contains "$dependency" "${build_used[@]}"; then used=$dependency; fi
        done < <(direct_dependencies "$package")
    fi
    [[ -n $used ]] || continue
    if contains "$package" "${build_packages[@]}"; then
        pass "build dependency $package (deps.sh) is installed by the build stage"
    else
        fail "the daemon's build reads files of $used, but the build stage does not install $package (scripts/lib/deps.sh)"
    fi
done

# ---- 5. the image's settings ------------------------------------------------------------------
runtime=$(stage_lines runtime)
grep -qx 'ENTRYPOINT \["/usr/local/bin/outboxd"\]' <<<"$runtime" &&
    pass "ENTRYPOINT is outboxd" || fail "the runtime stage's ENTRYPOINT is not [\"/usr/local/bin/outboxd\"]"
grep -q 'COPY --from=build /outboxd /usr/local/bin/outboxd' <<<"$runtime" ||
    fail "the runtime stage does not copy the built outboxd to /usr/local/bin/outboxd"
user=$(sed -n 's/^USER[[:space:]]*//p' <<<"$runtime" | tail -n1)
if [[ $user =~ ^([0-9]+)(:[0-9]+)?$ && ${BASH_REMATCH[1]} != 0 ]]; then
    pass "USER $user: numeric, not root"
else
    fail "the runtime stage's USER '$user' is not a numeric non-root id"
fi
admin_address=$(sed -n 's/^ENV OUTBOXD_ADMIN_ADDRESS=//p' <<<"$runtime")
[[ $admin_address == 0.0.0.0:9187 ]] && pass "admin server on 0.0.0.0:9187" ||
    fail "the runtime stage does not set OUTBOXD_ADMIN_ADDRESS=0.0.0.0:9187 (got '$admin_address')"
grep -q 'COPY scripts/container-healthcheck.sh /usr/local/bin/outboxd-healthcheck' <<<"$runtime" ||
    fail "the runtime stage does not install scripts/container-healthcheck.sh as outboxd-healthcheck"
grep -q '^HEALTHCHECK .*CMD \["/usr/local/bin/outboxd-healthcheck"\]' <<<"$runtime" &&
    pass "HEALTHCHECK runs outboxd-healthcheck" || fail "no HEALTHCHECK running /usr/local/bin/outboxd-healthcheck"

# The binary sees only the variables given here: the test suite's own OUTBOXD_TEST_* are no
# settings, and outboxd refuses unknown OUTBOXD_* variables.
clean_environment=(env -i "PATH=$PATH")

# The image's environment must not make the other commands refuse to start: they fail here on
# the unreachable database, not on a setting.
for command in migrate status; do
    output=$("${clean_environment[@]}" OUTBOXD_ADMIN_ADDRESS="$admin_address" \
        OUTBOXD_DATABASE_URL=postgresql://127.0.0.1:1/none \
        "$binary" "$command" --connect-timeout 200ms 2>&1) && status=0 || status=$?
    if [[ $status == 1 ]] && ! grep -qi 'admin' <<<"$output"; then
        pass "outboxd $command ignores the image's OUTBOXD_ADMIN_ADDRESS"
    else
        fail "outboxd $command with the image's environment: exit $status: $output"
    fi
done

# The health check script against the real daemon. /healthz answers before PostgreSQL does, so an
# unreachable database is enough. PATH is emptied: bash builtins only, as in the slim image.
healthcheck=$source_dir/scripts/container-healthcheck.sh
"${clean_environment[@]}" OUTBOXD_DATABASE_URL=postgresql://127.0.0.1:1/none \
    "$binary" run --admin-address 127.0.0.1:0 \
    --reconnect-max 1s >"$scratch/daemon.log" 2>&1 &
daemon_pid=$!
port=
for _ in $(seq 200); do
    port=$(sed -n 's/.*admin server listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$scratch/daemon.log")
    [[ -n $port ]] && break
    sleep 0.05
done
if [[ -z $port ]]; then
    fail "outboxd run did not start its admin server within 10 s:"
    cat "$scratch/daemon.log" >&2
else
    if env -i PATH=/nonexistent OUTBOXD_ADMIN_ADDRESS="0.0.0.0:$port" /bin/bash "$healthcheck"; then
        pass "the health check reports the live daemon healthy (0.0.0.0:$port probed on loopback)"
    else
        fail "the health check reports a live daemon unhealthy"
    fi
    kill -TERM "$daemon_pid"
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
    if env -i PATH=/nonexistent OUTBOXD_ADMIN_ADDRESS="0.0.0.0:$port" /bin/bash "$healthcheck" 2>/dev/null; then
        fail "the health check reports a stopped daemon healthy"
    else
        pass "the health check reports a stopped daemon unhealthy"
    fi
fi

if ((failures > 0)); then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "all image checks passed (the image itself was not built: no base image can be pulled here)"
