#!/usr/bin/env bash
# Makes sure what building, testing or benchmarking urt needs is installed.
#
#   scripts/deps.sh [run|test|bench]     (default: test)
#
#   run    compile the library and the examples: gcc, make, pkg-config, liburing
#   bench  run + the peers urt is measured beside (Go, Tokio through cargo
#          and Debian's crates, libuv, uvloop, python3), hyperfine, gnuplot,
#          taskset
#   test   bench (make test runs a quick bench as its last tier) + cmocka,
#          clang with its sanitizer runtime, valgrind
#
# Prints nothing when everything is there.  Otherwise, as root, installs the
# missing Debian packages with apt-get (never asks: CI has no stdin); as any
# other user, prints the exact command to run and exits 1.
set -euo pipefail

mode=${1:-test}
case $mode in
run | test | bench) ;;
*)
    echo "usage: $0 [run|test|bench]" >&2
    exit 2
    ;;
esac

have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'; }

# The sanitizer runtime ships apart from clang and is versioned with it
# (clang 14 on Debian 12 needs libclang-rt-14-dev); a clang that is not there
# yet will be Debian's default one, 14.
clang_major() {
    local v
    v=$(clang -dumpversion 2>/dev/null) || v=14
    echo "${v%%.*}"
}

need_cmd() { have_cmd "$1" || missing+=("$2"); }

check() {
    missing=()
    need_cmd gcc gcc
    need_cmd make make
    need_cmd pkg-config pkg-config
    # Both halves matter: the header to compile, the .pc for the link flags.
    if [[ ! -f /usr/include/liburing.h ]] || ! pkg-config --exists liburing 2>/dev/null; then
        missing+=(liburing-dev)
    fi
    if [[ $mode == test ]]; then
        [[ -f /usr/include/cmocka.h ]] || missing+=(libcmocka-dev)
        need_cmd clang clang
        have_pkg "libclang-rt-$(clang_major)-dev" || missing+=("libclang-rt-$(clang_major)-dev")
        need_cmd valgrind valgrind
    fi
    if [[ $mode == test || $mode == bench ]]; then
        need_cmd python3 python3
        need_cmd hyperfine hyperfine
        need_cmd gnuplot gnuplot-nox
        need_cmd taskset util-linux
        need_cmd go golang-go
        # Any cargo will do (rustup's, or Debian's); the crates must be
        # Debian's, because the build is offline (bench/tokio/.cargo).
        need_cmd cargo cargo
        [[ -d /usr/share/cargo/registry ]] && compgen -G '/usr/share/cargo/registry/tokio-1.*' >/dev/null ||
            missing+=(librust-tokio-dev)
        pkg-config --exists libuv 2>/dev/null || missing+=(libuv1-dev)
        # uvloop is installed for Debian's own interpreter, which
        # bench/asyncio_peer.py runs under whatever python3 comes first.
        /usr/bin/python3 -c 'import uvloop' 2>/dev/null || missing+=(python3-uvloop)
    fi
    # One package can stand for two missing things.
    if ((${#missing[@]})); then
        mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    fi
}

check
((${#missing[@]} == 0)) && exit 0

if ! have_cmd apt-get; then
    echo "deps.sh: missing ${missing[*]}; install them with your package manager" >&2
    exit 1
fi

install=(apt-get install -y --no-install-recommends "${missing[@]}")
if ((EUID != 0)); then
    echo "deps.sh: missing packages; run:" >&2
    echo "  sudo ${install[*]}" >&2
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Quiet on success, loud on failure: apt's log is the only clue when it fails.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -q && "${install[@]}"; } </dev/null >"$log" 2>&1; then
    cat "$log" >&2
    echo "deps.sh: apt-get failed" >&2
    exit 1
fi

# apt can succeed without giving us what we need (a package that holds no
# such command, say); say so here rather than later in a confusing build.
check
if ((${#missing[@]})); then
    echo "deps.sh: still missing ${missing[*]} after apt-get install" >&2
    exit 1
fi
