#!/bin/sh
# Runs each built example (build/examples/) and compares its stdout, stderr
# and exit status with what the seed note's Python program prints.  When
# python3 is present it also runs the scaled-down Python twins
# (examples/python/) and checks they print the same stdout and exit status:
# that is the proof the expected texts below are Python's, not ours.
#
#   tests/examples.sh             (EXAMPLES_DIR=build/examples by default)
#
# The last line is "examples: N passed, M failed"; the status is 1 if any
# check failed.

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${EXAMPLES_DIR:-$root/build/examples}
pydir=$root/examples/python
# A twin that hangs is a failure, not a stuck test run.
limit=${EXAMPLES_TIMEOUT:-20}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

passed=0
failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }

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
    timeout "$limit" "$bin/$name" $args >"$tmp/got.out" 2>"$tmp/got.err"
    got=$?
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
[ -n "$python" ] || echo "note: no python3, twins not compared with Python"

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

echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
