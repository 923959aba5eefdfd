# shellcheck shell=bash
# Build, test and benchmark dependencies of outboxd on Debian 12 (bookworm).
#
# Sourced, not executed: it defines functions only and deliberately does not `set -euo pipefail`,
# so sourcing it never changes the options of the caller's shell.

# Every Debian package the build, the tests and the benchmarks need. Versioned Boost packages pin
# the Boost that bookworm ships, so a future default-version bump cannot change the build silently.
OUTBOXD_DEBIAN_PACKAGES=(
    cmake
    ninja-build
    g++
    pkg-config
    libpq-dev
    libboost1.81-dev
    libboost-program-options1.81-dev
    libboost-url1.81-dev
    libsimdjson-dev
    prometheus-cpp-dev
    libssl-dev
    libfmt-dev
    libspdlog-dev
    libgtest-dev
    libgmock-dev
    postgresql
    postgresql-contrib
    clang-format
    ca-certificates
    faketime
    prometheus
    # Sanitizer and fuzz builds (CMakePresets.json): clang with libFuzzer and its sanitizer
    # runtimes; ccache, so the extra builds recompile only what changed.
    clang
    libfuzzer-14-dev
    libclang-rt-14-dev
    ccache
)

# Installs whatever of OUTBOXD_DEBIAN_PACKAGES is missing. When everything is already installed it
# touches neither the network nor the apt lists, so repeated test runs stay fast and work offline.
outboxd_install_deps() {
    local pkg status
    local -a missing=()

    for pkg in "${OUTBOXD_DEBIAN_PACKAGES[@]}"; do
        # dpkg-query fails for packages dpkg has never heard of; a removed package that left its
        # configuration behind reports "deinstall ok config-files". Both count as missing.
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [[ "$status" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done

    if ((${#missing[@]} == 0)); then
        return 0
    fi

    # apt needs root; fall back to sudo for developers who run the scripts unprivileged.
    local -a as_root=()
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "outboxd_install_deps: missing packages (${missing[*]}) and not root; install them first" >&2
            return 1
        fi
        as_root=(sudo)
    fi

    echo "outboxd_install_deps: installing ${missing[*]}" >&2
    # A fresh machine (or container) may have empty apt lists, so update once before installing.
    "${as_root[@]}" apt-get update || return 1
    # env rather than a plain assignment prefix, so the variable survives the sudo hop.
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}" || return 1
}

# Tools that are not Debian packages (test-only: chart checks, receiver examples, a DNS server for
# tests) live under one directory outside the repository, installed on first use and reused after.
# Nothing of the daemon's build needs them.
OUTBOXD_TOOLS_DIR=${OUTBOXD_TOOLS_DIR:-/var/cache/outboxd-tools}

# outboxd_pip_install PKG==VERSION...: into one virtual environment, $OUTBOXD_TOOLS_DIR/venv.
# Prints nothing and touches no network when every pinned package is already there.
outboxd_pip_install() {
    local venv="$OUTBOXD_TOOLS_DIR/venv" spec
    local -a missing=()
    if [[ ! -x "$venv/bin/python" ]]; then
        mkdir -p "$OUTBOXD_TOOLS_DIR" && python3 -m venv "$venv" || return 1
    fi
    for spec in "$@"; do
        # pip show prints "Version: X"; a pinned spec is satisfied only by exactly that version.
        if [[ "$("$venv/bin/pip" show "${spec%%==*}" 2>/dev/null | sed -n 's/^Version: //p')" != "${spec#*==}" ]]; then
            missing+=("$spec")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    echo "outboxd_pip_install: installing ${missing[*]}" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${missing[@]}"
}

# outboxd_npm_install PKG@VERSION...: into $OUTBOXD_TOOLS_DIR/node (require() them with
# NODE_PATH=$OUTBOXD_TOOLS_DIR/node/node_modules).
outboxd_npm_install() {
    local prefix="$OUTBOXD_TOOLS_DIR/node" spec name
    local -a missing=()
    for spec in "$@"; do
        name=${spec%@*}
        if [[ "$(node -p "require('$prefix/node_modules/$name/package.json').version" 2>/dev/null)" != "${spec##*@}" ]]; then
            missing+=("$spec")
        fi
    done
    ((${#missing[@]} == 0)) && return 0
    echo "outboxd_npm_install: installing ${missing[*]}" >&2
    mkdir -p "$prefix" && npm install --silent --no-audit --no-fund --prefix "$prefix" "${missing[@]}"
}

# outboxd_go_install MODULE/CMD@VERSION: the binary lands in $OUTBOXD_TOOLS_DIR/go/bin.
outboxd_go_install() {
    local spec=$1 bin="$OUTBOXD_TOOLS_DIR/go/bin" name
    name=$(basename "${spec%@*}")
    [[ -x "$bin/$name" ]] && return 0
    echo "outboxd_go_install: installing $spec" >&2
    mkdir -p "$bin" && GOBIN="$bin" GOFLAGS=-mod=mod go install "$spec"
}
