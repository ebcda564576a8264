#!/usr/bin/env bash
# Runs make test's tiers one after the other and ends with one line per tier.
#
#   scripts/run-tiers.sh TIER...      (each runs as `make test-TIER`)
#
# Nothing stops early: a failed tier does not keep the next ones from
# running, so one CI run shows everything that is wrong.  Each tier's output
# goes to the terminal as it comes and to build/logs/tier-TIER.out; the
# closing table gives each tier's verdict, time, and the count lines it
# printed ("tests: 325 passed, 0 failed", "difftest: ...", "fuzz: ...").
# Exit status 1 if any tier failed.
set -uo pipefail

mkdir -p build/logs
declare -a lines
failed=
for tier in "$@"; do
    out=build/logs/tier-$tier.out
    start=$(date +%s)
    make --no-print-directory "test-$tier" 2>&1 | tee "$out"
    status=${PIPESTATUS[0]}
    secs=$(($(date +%s) - start))
    # The count lines of the tier; several when it runs several passes
    # (kernels, faults): they are summed.
    counts=$(grep -E '^[a-z]+: .*[0-9]+ (passed|executions)' "$out" |
        awk -F': ' '
            # "NAME: N passed, M failed" lines of one NAME are summed; any
            # other count line is shown as it is.
            $2 ~ /^[0-9]+ passed, [0-9]+ failed/ {
                split($2, w, " "); p[$1] += w[1]; f[$1] += w[3]
                if (!($1 in seen)) { order[++n] = $1; seen[$1] = 1 }
                next
            }
            { order[++n] = $0; verbatim[n] = 1 }
            END {
                for (i = 1; i <= n; i++) {
                    k = order[i]
                    s = (i in verbatim) ? k : k ": " p[k] " passed, " f[k] " failed"
                    printf "%s%s", (i > 1 ? "; " : ""), s
                }
            }')
    if [[ $status == 0 ]]; then verdict=ok; else verdict=FAILED; failed="$failed $tier"; fi
    lines+=("$(printf '  %-9s %-6s %5d s  %s' "$tier" "$verdict" "$secs" "${counts:-(no count printed)}")")
done

echo "==== make test: one line per tier"
printf '%s\n' "${lines[@]}"
if [[ -n $failed ]]; then
    echo "make test: FAILED:$failed"
    exit 1
fi
echo "make test: all tiers passed ($*)"
