#!/usr/bin/env bash
# Runs cmocka test binaries, optionally under a wrapper, and tallies them.
#
#   scripts/run-tests.sh [-w WRAPPER] [-j JOBS] [-t SECONDS] [-l LOGDIR] BINARY...
#
#   -w  command to run each binary under, split on spaces ("valgrind -q ...")
#   -j  binaries run at once (default 1); results still print in the order given
#   -t  seconds a binary may run before it is killed and failed (default 600)
#   -l  keep each binary's output in LOGDIR/NAME.log (default: a temporary dir)
#
# One line per binary; a failing one also shows the end of its output.  The
# last line is always "tests: N passed, M failed", and the exit status is 1
# when M > 0.  A binary counts its tests from cmocka's summary lines; when it
# ends badly without cmocka saying which test failed (a crash, a timeout, a
# sanitizer abort, valgrind errors or leaks at exit, a leaked fd), every test
# of it that cmocka did not report as passed or skipped counts as failed, and
# if cmocka reported them all as passed, all of them do: they ran in a process
# that was not clean.
set -uo pipefail

wrapper=
parallel=1
limit=600
logdir=
while getopts 'w:j:t:l:' opt; do
    case $opt in
    w) wrapper=$OPTARG ;;
    j) parallel=$OPTARG ;;
    t) limit=$OPTARG ;;
    l) logdir=$OPTARG ;;
    *)
        sed -n '3,9s/^# \{0,1\}//p' "$0" >&2
        exit 2
        ;;
    esac
done
shift $((OPTIND - 1))
bins=("$@")

if [[ -z $logdir ]]; then
    logdir=$(mktemp -d)
    trap 'rm -rf "$logdir"' EXIT
fi
mkdir -p "$logdir"

# A developer's cmocka settings would change the output this script reads.
unset CMOCKA_MESSAGE_OUTPUT CMOCKA_XML_FILE CMOCKA_TEST_ABORT

# Word splitting of the wrapper is wanted: it is a command line.
# shellcheck disable=SC2206
wrap=($wrapper)

run_one() { # index
    local bin=${bins[$1]} name log start
    name=$(basename "$bin")
    log=$logdir/$name.log
    start=$(date +%s%N)
    if [[ ! -x $bin ]]; then
        echo "$bin was not built" >"$log"
        echo "127 0" >"$logdir/$name.rc.tmp"
        mv "$logdir/$name.rc.tmp" "$logdir/$name.rc"
        return
    fi
    # The braces keep bash's own "Aborted"-style notice out of the output:
    # the log already says how the binary ended.
    { timeout -k 10 "$limit" "${wrap[@]}" "$bin" </dev/null >"$log" 2>&1; } 2>/dev/null
    # Written whole, then renamed: report_finished polls for this file.
    echo "$? $((($(date +%s%N) - start) / 1000000))" >"$logdir/$name.rc.tmp"
    mv "$logdir/$name.rc.tmp" "$logdir/$name.rc"
}

sum() { # regex-with-one-number log
    sed -nE "s/$1/\\1/p" "$2" | awk '{ s += $1 } END { print s + 0 }'
}

# Valgrind's --track-fds report lists every fd open at exit; the ones the
# process was started with say "<inherited from parent>".  Only the main
# process counts, the one valgrind's "Command:" banner names: a test's forked
# child reports the fds it shares with its parent as its own.
leaked_fds() { # log
    local main
    main=$(sed -n 's/^==\([0-9]*\)== Command: .*/\1/p' "$1" | head -n 1)
    [[ -n $main ]] || return 0
    awk -v pid="==$main==" '
        $1 != pid { next }
        pending != "" {
            if ($0 !~ /<inherited from parent>/) print pending
            pending = ""
        }
        / Open .*(descriptor|socket) [0-9]+/ { pending = $0 }
        END { if (pending != "") print pending }
    ' "$1"
}

total_passed=0
total_failed=0
total_skipped=0

report() { # index
    local bin=${bins[$1]} name log rc ms ran passed skipped failed why=
    name=$(basename "$bin")
    log=$logdir/$name.log
    read -r rc ms <"$logdir/$name.rc"
    ran=$(sum '^\[=+\] Running ([0-9]+) test.*' "$log")
    passed=$(sum '^\[  PASSED  \] ([0-9]+) test.*' "$log")
    skipped=$(sum '^\[  SKIPPED \] ([0-9]+) test.*' "$log")
    failed=$((ran - passed - skipped))

    local fds
    fds=$(leaked_fds "$log")
    if ((rc == 124 || rc == 137)); then
        why="timed out after ${limit}s"
    elif ((rc > 128)); then
        why="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    elif [[ $wrapper == *valgrind* ]] && ((rc == 99)); then
        why="valgrind found errors or leaks"
    elif [[ $(head -n 1 "$log") == "$bin was not built" ]]; then
        why="not built"
    elif ((rc != 0 && failed == 0)); then
        why="exit status $rc"
    fi
    if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
        why="${why:+$why, }sanitizer report"
    fi
    if [[ -n $fds ]]; then
        why="${why:+$why, }$(wc -l <<<"$fds") fd(s) left open"
    fi
    if ((ran == 0)); then
        [[ $why == "not built" ]] || why="${why:+$why, }no cmocka summary"
        failed=1
    elif [[ -n $why ]] && ((failed == 0)); then
        failed=$((ran - skipped))
        passed=0
    fi

    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + failed))
    total_skipped=$((total_skipped + skipped))
    local secs
    secs=$(printf '%d.%01d' $((ms / 1000)) $((ms % 1000 / 100)))
    if ((failed == 0)); then
        printf '  ok    %-32s %3d passed%s  %ss\n' "$name" "$passed" \
            "$( ((skipped)) && echo ", $skipped skipped")" "$secs"
        return
    fi
    printf '  FAIL  %-32s %3d passed, %d failed%s  %ss\n' "$name" "$passed" "$failed" \
        "${why:+ ($why)}" "$secs"
    # cmocka's own account of each failure comes first: a CI page that
    # shows only part of the log must still say which test failed and why.
    # (Its summary after "N test(s) run." repeats the names: skipped.)
    awk '/^\[=+\] [0-9]+ test\(s\) run\./ { summary = 1 }
         /^\[=+\] Running / { summary = 0 }
         !summary && /^\[  (ERROR|FAILED) +\]|^\[   LINE   \]/ { print "  > " $0 }' "$log"
    # Valgrind warns of every syscall it does not know (process_madvise on
    # 3.19) in every loop that tries it; the library falls back, and the
    # warning is noise.
    local lines line filtered
    filtered=$(grep -vE -- '^--[0-9]+-- (WARNING: unhandled .* syscall|You may be able|Read the file README_MISSING|Nevertheless we consider|it at http://valgrind.org)' "$log")
    lines=$(wc -l <<<"$filtered")
    if ((lines > 200)); then
        echo "  ---- last 200 of $lines lines; all in $log"
        printf '%s\n' "$filtered" | tail -n 200 | sed 's/^/  | /'
    else
        printf '%s\n' "$filtered" | sed 's/^/  | /'
    fi
    if [[ -n $fds ]]; then
        while IFS= read -r line; do echo "  fd left open: $line"; done <<<"$fds"
    fi
    echo "  ----"
}

next=0
report_finished() {
    while ((next < ${#bins[@]})) && [[ -f $logdir/$(basename "${bins[$next]}").rc ]]; do
        report "$next"
        next=$((next + 1))
    done
}

for i in "${!bins[@]}"; do
    rm -f "$logdir/$(basename "${bins[$i]}").rc"
done
for i in "${!bins[@]}"; do
    while (($(jobs -rp | wc -l) >= parallel)); do
        wait -n
        report_finished
    done
    run_one "$i" &
    report_finished
done
wait
report_finished

((total_skipped)) && echo "skipped: $total_skipped"
echo "tests: $total_passed passed, $total_failed failed"
((total_failed == 0))
