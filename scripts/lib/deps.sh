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
