#!/bin/sh
# Runs each built example (build/examples/) and compares its stdout, stderr
# and exit status with what the seed note's Python program prints.  When
# python3 is present it also runs the scaled-down Python twins
# (examples/python/) and checks they print the same stdout and exit status:
# that is the proof the expected texts below are Python's, not ours.
#
# The I/O examples have no Python twin; they are checked by what they do.
# cp copies files of 0 bytes, 1 byte and 20 MiB (compared with cmp); the
# echo server takes 1,000 concurrent connections from tests/echo_client.c,
# gives its fds back as they close, and exits 0 within 5 s of SIGTERM.  Both
# also run as the ASan builds (build/asan/examples/, LSan being the leak
# check at exit) and with urt limited to Linux 5.6's io_uring.
#
#   tests/examples.sh             (EXAMPLES_DIR=build/examples by default,
#                                  ASAN_EXAMPLES_DIR=build/asan/examples,
#                                  ECHO_CLIENT=build/tests/echo_client,
#                                  ASAN_ECHO_CLIENT=build/asan/tests/echo_client,
#                                  ECHO_CONNECTIONS=1000)
#
# EXAMPLES_VALGRIND=1 runs the C programs under valgrind memcheck instead
# (make test's valgrind tier): any memory error or leak makes a program
# exit 99, which no check expects.  Only the plain builds run then, without
# the Python comparisons, and the echo check has 100 connections.
#
# The last line is "examples: N passed, M failed"; the status is 1 if any
# check failed.

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${EXAMPLES_DIR:-$root/build/examples}
pydir=$root/examples/python
asan_bin=${ASAN_EXAMPLES_DIR:-$root/build/asan/examples}
client=${ECHO_CLIENT:-$root/build/tests/echo_client}
asan_client=${ASAN_ECHO_CLIENT:-$root/build/asan/tests/echo_client}
connections=${ECHO_CONNECTIONS:-1000}
# A twin that hangs is a failure, not a stuck test run.
limit=${EXAMPLES_TIMEOUT:-20}
memcheck=
# Waits for the server are this many 50 ms polls (a start, a close, an exit).
polls=100
if [ "${EXAMPLES_VALGRIND:-0}" = 1 ]; then
    memcheck="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect,possible"
    connections=${ECHO_CONNECTIONS:-100}
    limit=${EXAMPLES_TIMEOUT:-180}
    polls=600
fi
# Fibers switch stacks under ASan's fake stacks: same options as the asan
# tier (Makefile's ASAN_ENV), when the caller has not given any.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

tmp=$(mktemp -d)
# A server still running when we stop (interrupted, or a check that gave
# up on it) is killed, never left behind.
server=
cleanup() {
    [ -z "$server" ] || kill -KILL "$server" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

# Valgrind's own lines (==PID== reports, --PID-- warnings such as the one
# for process_madvise, which 3.19 does not know) are not the program's
# stderr: what the reports say also shows in the exit status.
strip_memcheck() { # file
    [ -z "$memcheck" ] && return
    grep -Ev '^(==|--)[0-9]+(==|--)' "$1" >"$1.program"
    mv "$1.program" "$1"
}

# show_diff LABEL EXPECTED_FILE GOT_FILE
show_diff() {
    echo "  $1 differs (- expected, + got):"
    diff -u "$2" "$3" | tail -n +3 | sed 's/^/    /'
}

# check NAME ARGS STATUS: runs the C example with ARGS (one word or none) and
# compares with $tmp/expect.out, $tmp/expect.err and STATUS.
check() {
    name=$1 args=$2 status=$3
    label="$name${args:+ $args}"
    if [ ! -x "$bin/$name" ]; then
        fail "$label: $bin/$name not built (make examples)"
        return
    fi
    # shellcheck disable=SC2086 # args is one word or empty, on purpose
    # shellcheck disable=SC2086 # memcheck is a command line, on purpose
    timeout "$limit" $memcheck "$bin/$name" $args >"$tmp/got.out" 2>"$tmp/got.err"
    got=$?
    strip_memcheck "$tmp/got.err"
    ok=1
    if [ "$got" -ne "$status" ]; then
        echo "  exit status $got, expected $status"
        ok=0
    fi
    if ! cmp -s "$tmp/expect.out" "$tmp/got.out"; then
        show_diff stdout "$tmp/expect.out" "$tmp/got.out"
        ok=0
    fi
    if ! cmp -s "$tmp/expect.err" "$tmp/got.err"; then
        show_diff stderr "$tmp/expect.err" "$tmp/got.err"
        ok=0
    fi
    if [ $ok -eq 1 ]; then pass "$label"; else fail "$label"; fi

    [ -n "$python" ] || return
    # Python's stderr is a traceback with paths in it: only its last line,
    # the exception, is compared with the twin's one-line error.
    # shellcheck disable=SC2086
    timeout "$limit" "$python" "$pydir/$name.py" $args >"$tmp/py.out" 2>"$tmp/py.err"
    pystatus=$?
    tail -n 1 "$tmp/py.err" >"$tmp/py.lasterr"
    ok=1
    if [ "$pystatus" -ne "$status" ]; then
        echo "  python exit status $pystatus, expected $status"
        ok=0
    fi
    if ! cmp -s "$tmp/py.out" "$tmp/expect.out"; then
        show_diff "python stdout" "$tmp/expect.out" "$tmp/py.out"
        ok=0
    fi
    if ! cmp -s "$tmp/py.lasterr" "$tmp/expect.err"; then
        show_diff "python stderr (last line)" "$tmp/expect.err" "$tmp/py.lasterr"
        ok=0
    fi
    if [ $ok -eq 1 ]; then pass "$label = python3 $name.py${args:+ $args}"
    else fail "$label = python3 $name.py${args:+ $args}"; fi
}

python=$(command -v python3 || true)
[ -n "$python" ] || [ -n "$memcheck" ] || echo "note: no python3, twins not compared with Python"
[ -z "$memcheck" ] || python=

cat >"$tmp/expect.out" <<'EOF'
Main started
Main continues running
Task started
Task finished
Main finished
EOF
: >"$tmp/expect.err"
check create_task "" 0

cat >"$tmp/expect.out" <<'EOF'
['Task 2 done', 'Task 1 done', 'Task 3 done']
EOF
: >"$tmp/expect.err"
check gather "" 0

: >"$tmp/expect.out"
cat >"$tmp/expect.err" <<'EOF'
ValueError: Something went wrong!
EOF
check gather_exceptions "" 1

cat >"$tmp/expect.out" <<'EOF'
['Task 1 done', ValueError('Something went wrong!'), 'Task 3 done']
EOF
: >"$tmp/expect.err"
check gather_exceptions --return-exceptions 0

cat >"$tmp/expect.out" <<'EOF'
all started
a done
c cancelled
error: b failed
group closed
EOF
: >"$tmp/expect.err"
check taskgroup "" 0

cat >"$tmp/expect.out" <<'EOF'
slow() timed out
fast
wait_for timed out
EOF
: >"$tmp/expect.err"
check timeout "" 0

# ---- cp --------------------------------------------------------------------

# check_cp LABEL BINARY SOURCE [VAR=VALUE...]: copies SOURCE with BINARY
# (environment VAR=VALUE added) and expects status 0, no output, and a copy
# with the same bytes.
check_cp() {
    label=$1 cp=$2 src=$3
    shift 3
    if [ ! -x "$cp" ]; then
        fail "$label: $cp not built (make examples asan-examples)"
        return
    fi
    rm -f "$tmp/copy"
    # shellcheck disable=SC2086
    timeout "$limit" env "$@" $memcheck "$cp" "$src" "$tmp/copy" >"$tmp/got.out" 2>"$tmp/got.err"
    got=$?
    strip_memcheck "$tmp/got.err"
    ok=1
    if [ "$got" -ne 0 ]; then
        echo "  exit status $got, expected 0"
        ok=0
    fi
    if [ -s "$tmp/got.out" ] || [ -s "$tmp/got.err" ]; then
        echo "  output, expected none:"
        sed 's/^/    /' "$tmp/got.out" "$tmp/got.err"
        ok=0
    fi
    if ! cmp "$src" "$tmp/copy" >"$tmp/cmp.out" 2>&1; then
        sed 's/^/  /' "$tmp/cmp.out"
        ok=0
    fi
    if [ $ok -eq 1 ]; then pass "$label"; else fail "$label"; fi
}

: >"$tmp/empty"
printf 'x' >"$tmp/one"
# 20 MiB and a bit: 80 full chunks of 256 KiB and a short last one.
head -c $((20 * 1024 * 1024 + 12345)) /dev/urandom >"$tmp/big"

check_cp "cp of a 0-byte file" "$bin/cp" "$tmp/empty"
check_cp "cp of a 1-byte file" "$bin/cp" "$tmp/one"
check_cp "cp of a 20 MiB random file" "$bin/cp" "$tmp/big"
if [ -z "$memcheck" ]; then
    check_cp "cp of a 20 MiB random file, Linux 5.6 features" "$bin/cp" "$tmp/big" URT_KERNEL=5.6
    check_cp "cp of a 0-byte file, ASan" "$asan_bin/cp" "$tmp/empty"
    check_cp "cp of a 20 MiB random file, ASan" "$asan_bin/cp" "$tmp/big"
fi

# An error is a message and status 1, never a crash or silence.
if [ -x "$bin/cp" ]; then
    # shellcheck disable=SC2086
    timeout "$limit" $memcheck "$bin/cp" "$tmp/missing" "$tmp/copy" >"$tmp/got.out" 2>"$tmp/got.err"
    got=$?
    strip_memcheck "$tmp/got.err"
    echo "cp: $tmp/missing: No such file or directory" >"$tmp/expect.err"
    if [ "$got" -eq 1 ] && [ ! -s "$tmp/got.out" ] && cmp -s "$tmp/expect.err" "$tmp/got.err"; then
        pass "cp of a missing file: status 1 and a message"
    else
        echo "  exit status $got, expected 1"
        show_diff stderr "$tmp/expect.err" "$tmp/got.err"
        fail "cp of a missing file: status 1 and a message"
    fi
fi

# ---- the echo server ----------------------------------------------------------

fd_count() { # pid
    ls "/proc/$1/fd" 2>/dev/null | wc -l
}

# True while the process runs: an exited child we have not waited for yet
# still answers kill -0, as a zombie.
running() { # pid
    kill -0 "$1" 2>/dev/null &&
        [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}

now_ms() {
    echo $(($(date +%s%N) / 1000000))
}

# check_echo LABEL SERVER CLIENT [VAR=VALUE...]: starts SERVER on
# 127.0.0.1:0, runs CLIENT with $connections connections against it, then
# checks that the server's fds are back to what they were before the
# clients came, and that SIGTERM makes it exit 0 within 5 s, leaving no
# process, no sanitizer report and nothing unexpected on stderr.
check_echo() {
    label=$1 srv=$2 cli=$3
    shift 3
    for b in "$srv" "$cli"; do
        if [ ! -x "$b" ]; then
            fail "$label: $b not built (make examples asan-examples $ECHO_CLIENT)"
            return
        fi
    done
    ok=1
    # env execs the server, so $! is the server itself.
    # shellcheck disable=SC2086
    env "$@" $memcheck "$srv" 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
    server=$!
    addr=
    i=0
    while [ $i -lt $polls ] && [ -z "$addr" ] && running "$server"; do
        addr=$(sed -n '1s/^listening on \(127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$tmp/server.out")
        [ -n "$addr" ] || sleep 0.05
        i=$((i + 1))
    done
    if [ -z "$addr" ] || [ "${addr#*:}" = 0 ]; then
        echo "  no 'listening on 127.0.0.1:PORT' line within 5 s; stdout and stderr:"
        sed 's/^/    /' "$tmp/server.out" "$tmp/server.err"
        kill -KILL "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        server=
        fail "$label"
        return
    fi
    base=$(fd_count "$server")

    start=$(now_ms)
    timeout 90 env "$@" "$cli" -n "$connections" "$addr" >"$tmp/client.out" 2>"$tmp/client.err"
    cst=$?
    ms=$(($(now_ms) - start))
    summary=$(cat "$tmp/client.out")
    case $cst:$summary in
    "0:echo_client: $connections connections, "*" bytes verified, 0 errors")
        echo "  $summary, $((ms / 1000)).$((ms % 1000 / 100)) s"
        ;;
    *)
        echo "  client: exit status $cst (124: timed out); its output:"
        sed 's/^/    /' "$tmp/client.out" "$tmp/client.err" | head -n 20
        ok=0
        ;;
    esac

    # The server closes its side when it sees each client's end of file:
    # give it a moment to get there.
    i=0
    while [ $i -lt $polls ] && [ "$(fd_count "$server")" -ne "$base" ]; do
        sleep 0.05
        i=$((i + 1))
    done
    fds=$(fd_count "$server")
    if [ "$fds" -ne "$base" ]; then
        echo "  server has $fds fds open after the clients left, $base before they came"
        ok=0
    fi

    kill -TERM "$server"
    i=0
    while [ $i -lt $polls ] && running "$server"; do
        sleep 0.05
        i=$((i + 1))
    done
    if running "$server"; then
        echo "  server still running 5 s after SIGTERM; killed"
        kill -KILL "$server"
        ok=0
    fi
    wait "$server"
    sst=$?
    # Reaped: nothing of it may remain, not even a zombie.
    if kill -0 "$server" 2>/dev/null; then
        echo "  server process $server still exists after exiting"
        ok=0
    fi
    server=
    if [ "$sst" -ne 0 ]; then
        echo "  server: exit status $sst, expected 0"
        ok=0
    fi
    echo "echo_server: SIGTERM, closing 0 connections" >"$tmp/expect.err"
    strip_memcheck "$tmp/server.err"
    if ! cmp -s "$tmp/expect.err" "$tmp/server.err"; then
        show_diff "server stderr" "$tmp/expect.err" "$tmp/server.err"
        ok=0
    fi
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/client.err"; then
        echo "  sanitizer report from the client (above)"
        ok=0
    fi
    if [ $ok -eq 1 ]; then pass "$label"; else fail "$label"; fi
}

check_echo "echo_server: $connections connections, fds back, SIGTERM exits 0" \
    "$bin/echo_server" "$client"
if [ -z "$memcheck" ]; then
    check_echo "echo_server: same, Linux 5.6 features" \
        "$bin/echo_server" "$client" URT_KERNEL=5.6
    check_echo "echo_server: same, ASan (no leak at exit)" \
        "$asan_bin/echo_server" "$asan_client"
fi

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
