#!/bin/bash
# The long stress tier, what `make stress` runs: each part is a make target
# run under its own time limit, one after the other (they would share the
# two cores otherwise, and the soak's figures would say so).
#
#   stress-difftest   random task programs, urt against asyncio, at length
#   stress-faults     fault injection
#   stress-fuzz       the fuzzers of tests/fuzz/
#   stress-soak       the echo server holding 10,000 connections (SOAK_SECONDS)
#   stress-tasks      a million sleeping tasks, all cancelled
#   stress-overflow   100 stack-overflow storms
#
# One line per part, "ok" or "FAIL", with its time; a part's output goes to
# build/stress/logs/PART.log, and the end of it is shown when it fails.  A
# part whose target does not exist fails, saying so, and the others still
# run.  Then every "figure: ..." line the parts wrote to build/stress/*.txt
# is printed and written to build/stress/summary.md as a Markdown list, for
# the README's "Reliability" section.  The status is 1 if any part failed.
#
# Limits, in seconds: STRESS_TIMEOUT (1800) for each part, except the soak:
# SOAK_SECONDS (300) + 600 for connecting, closing and the checks.  A part
# can have its own: STRESS_TIMEOUT_SOAK, STRESS_TIMEOUT_FUZZ ...
# STRESS_PARTS chooses and orders the parts (default: all, as above).

set -u

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
out=build/stress
logs=$out/logs
parts=${STRESS_PARTS:-difftest faults fuzz soak tasks overflow}
default_limit=${STRESS_TIMEOUT:-1800}

limit_of() {
    local var
    var=STRESS_TIMEOUT_$(echo "$1" | tr '[:lower:]' '[:upper:]')
    if [ -n "${!var:-}" ]; then
        echo "${!var}"
    elif [ "$1" = soak ]; then
        echo $((${SOAK_SECONDS:-300} + 600))
    else
        echo "$default_limit"
    fi
}

mkdir -p "$logs"
# Figures of an earlier run must not pass for this one's.
rm -f "$out"/*.txt "$out/summary.md"

echo "==== stress: ${parts// /, } (logs in $logs/)"
passed=0
failed=0
failed_parts=
for part in $parts; do
    target=stress-$part
    log=$logs/$part.log
    limit=$(limit_of "$part")
    t0=$(date +%s)
    timeout "$limit" make --no-print-directory "$target" >"$log" 2>&1 </dev/null
    st=$?
    t=$(($(date +%s) - t0))
    if [ "$st" -eq 0 ]; then
        passed=$((passed + 1))
        printf 'ok    %-16s %5d s\n' "$target" "$t"
        continue
    fi
    failed=$((failed + 1))
    failed_parts="$failed_parts $part"
    if grep -q "No rule to make target '$target'" "$log"; then
        why="no target $target in the Makefile yet"
    elif [ "$st" -eq 124 ]; then
        why="timed out after $limit s"
    else
        why="exit status $st"
    fi
    printf 'FAIL  %-16s %5d s  (%s)\n' "$target" "$t" "$why"
    case $why in no\ target*) ;; *) tail -n 20 "$log" | sed 's/^/        /' ;; esac
done

echo "==== figures"
: >"$out/summary.md"
# In the order of the parts, then whatever else a part wrote.
files=
for part in $parts; do
    [ -f "$out/$part.txt" ] && files="$files $out/$part.txt"
done
for f in "$out"/*.txt; do
    [ -f "$f" ] && case " $files " in *" $f "*) ;; *) files="$files $f" ;; esac
done
for f in $files; do
    sed -n 's/^figure: //p' "$f" | while IFS= read -r line; do
        echo "figure: $line"
        echo "- $line" >>"$out/summary.md"
    done
done
[ -s "$out/summary.md" ] || echo "(none)"
echo "(written to $out/summary.md)"

echo "stress: $passed passed, $failed failed${failed_parts:+ (failed:$failed_parts)}"
[ "$failed" -eq 0 ]
