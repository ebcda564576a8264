#!/bin/sh
# Runs the core bench in C (build/bench/core, built by `make bench`) and its
# asyncio twin, then prints one Markdown table with both and the ratio
# asyncio/urt (above 1: urt is faster, or smaller).
#
#   bench/run.sh            about 20 s on 2 cores
#   QUICK=1 bench/run.sh    smoke test, about 1 s
#
# Each program prints its own table; the rows are joined on the metric name.

set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
core=${CORE:-$root/build/bench/core}

if [ ! -x "$core" ]; then
    echo "run.sh: $core not built; run 'make bench' first" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$core" >"$tmp/urt.md"
if command -v python3 >/dev/null 2>&1; then
    python3 "$root/bench/core_asyncio.py" >"$tmp/asyncio.md"
else
    echo "run.sh: no python3, asyncio column left empty" >&2
    : >"$tmp/asyncio.md"
fi

head -n 1 "$tmp/urt.md"
head -n 1 "$tmp/asyncio.md"
echo
awk -F'|' '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    # Table rows only: skip the title line, the header and the rule.
    $1 != "" || NF < 5 { next }
    trim($2) == "metric" || trim($2) ~ /^-+$/ { next }
    FNR == NR { urt[trim($2)] = trim($3); unit[trim($2)] = trim($4); order[n++] = trim($2); next }
    { py[trim($2)] = trim($3) }
    END {
        print "| metric | urt | asyncio | unit | asyncio/urt |"
        print "|---|---:|---:|---|---:|"
        for (i = 0; i < n; i++) {
            m = order[i]
            a = (m in py) ? py[m] : "-"
            ratio = "-"
            if (a ~ /^[0-9.]+$/ && urt[m] ~ /^[0-9.]+$/ && urt[m] + 0 > 0)
                ratio = sprintf("%.1f", a / urt[m])
            printf "| %s | %s | %s | %s | %s |\n", m, urt[m], a, unit[m], ratio
        }
    }
' "$tmp/urt.md" "$tmp/asyncio.md"
