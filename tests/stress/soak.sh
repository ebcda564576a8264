#!/bin/bash
# The echo soak: examples/echo_server holds SOAK_CONNECTIONS connections
# from tests/echo_client.c (-d) for SOAK_SECONDS, every byte checked, while
# its RSS (/proc/PID/status VmRSS) and open fds (/proc/PID/fd) are sampled
# every SOAK_INTERVAL seconds.  It passes when
#   - the client verified every byte it got back, had no error, and held
#     all its connections open at once for the whole time;
#   - every sample from SOAK_FROM seconds on (a minute, in the full soak:
#     by then each connection has done its largest message and the server
#     has reached its working size) shows all the connections open in the
#     server (its fds before the clients came, plus one per connection) and
#     an RSS at most SOAK_RSS_SLACK_KIB above the first of them;
#   - the server gives its fds back once the clients have left, and SIGTERM
#     makes it exit 0, saying it closed 0 connections.
# On success the last line is "figure: echo soak: ...".  Everything is
# bounded: the client by -t, the waits for the server by their own limits.
#
#   tests/stress/soak.sh      (STRESS_QUICK=1: 1,000 connections for 15 s,
#                              flatness from second 5, sampled every second)
#
# Variables: SOAK_SECONDS (300), SOAK_CONNECTIONS (10000), SOAK_FROM (60),
# SOAK_INTERVAL (5), SOAK_RSS_SLACK_KIB (4096), ECHO_SERVER, ECHO_CLIENT,
# SOAK_SAMPLES (where the samples are written).

set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
server_bin=${ECHO_SERVER:-$root/build/examples/echo_server}
client_bin=${ECHO_CLIENT:-$root/build/tests/echo_client}
if [ "${STRESS_QUICK:-}" = 1 ]; then
    seconds=${SOAK_SECONDS:-15} connections=${SOAK_CONNECTIONS:-1000}
    from=${SOAK_FROM:-5} interval=${SOAK_INTERVAL:-1}
else
    seconds=${SOAK_SECONDS:-300} connections=${SOAK_CONNECTIONS:-10000}
    from=${SOAK_FROM:-60} interval=${SOAK_INTERVAL:-5}
fi
# Why 4 MiB: the server's working set is reached within the first seconds
# (the second message of every connection is the largest, 16 KiB, so each
# task's receive buffer is touched whole then) and stays put: what moves
# after that is glibc's heap, whose free chunks are reused rather than
# returned, and the kernel's view of pages shared with libc.  A leak of
# one byte per message, the smallest one worth finding, is tens of MiB
# over a full soak (it exchanges millions of messages), and a leaked
# stack, 16 KiB or more, passes 4 MiB within a few hundred.  (VmRSS itself
# may be off by a few hundred KiB on kernels that read its per-CPU
# counters without summing them.)
rss_slack=${SOAK_RSS_SLACK_KIB:-4096}
samples=${SOAK_SAMPLES:-$root/build/stress/soak-samples.dat}
mkdir -p "$(dirname "$samples")"

fail() {
    echo "FAIL: $*"
    failed=1
}

if [ "$seconds" -le "$from" ]; then
    echo "FAIL: SOAK_SECONDS ($seconds) must be more than SOAK_FROM ($from): flatness is from there to the end"
    exit 1
fi
for b in "$server_bin" "$client_bin"; do
    if [ ! -x "$b" ]; then
        echo "FAIL: $b not built"
        exit 1
    fi
done

# One fd per connection in each process, and some for the ring, stdio and
# the listener.  Root may raise the hard limit; anyone may go up to it.
need=$((connections + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    ulimit -n "$need" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
    echo "FAIL: $connections connections need $need fds, ulimit -n allows $(ulimit -n)"
    exit 1
fi

tmp=$(mktemp -d)
server=
client=
cleanup() {
    [ -z "$client" ] || kill -KILL "$client" 2>/dev/null
    [ -z "$server" ] || kill -KILL "$server" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status" 2>/dev/null; }
running() { # pid; an exited child not yet waited for is a zombie, not running
    kill -0 "$1" 2>/dev/null &&
        [ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)" != Z ]
}
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

failed=0
"$server_bin" 127.0.0.1:0 >"$tmp/server.out" 2>"$tmp/server.err" &
server=$!
addr=
for _ in $(seq 100); do
    addr=$(sed -n '1s/^listening on \(127\.0\.0\.1:[0-9][0-9]*\)$/\1/p' "$tmp/server.out")
    [ -n "$addr" ] || ! running "$server" || { sleep 0.05; continue; }
    break
done
if [ -z "$addr" ]; then
    echo "FAIL: no 'listening on 127.0.0.1:PORT' line from the server within 5 s:"
    sed 's/^/    /' "$tmp/server.out" "$tmp/server.err"
    exit 1
fi
base_fds=$(fd_count "$server")
base_rss=$(rss_kib "$server")
echo "soak: $connections connections for $seconds s against $addr, samples every $interval s, flat from $from s"
echo "server before the clients: $base_fds fds, RSS $(mib "$base_rss") MiB"

# -t: a server that stops answering fails the client within a minute of
# the end instead of hanging the soak.
start=$(now_ms)
"$client_bin" -n "$connections" -d "$seconds" -t $((seconds + 60)) "$addr" \
    >"$tmp/client.out" 2>"$tmp/client.err" &
client=$!

# elapsed-ms fds rss-kib, one line per sample, from the client's start.
: >"$samples"
next=$start
while running "$client"; do
    t=$(now_ms)
    if [ "$t" -ge "$next" ]; then
        echo "$((t - start)) $(fd_count "$server") $(rss_kib "$server")" >>"$samples"
        next=$((next + interval * 1000))
    fi
    sleep 0.2
done
wait "$client"
cst=$?
client=
ms=$(($(now_ms) - start))

summary=$(sed -n 1p "$tmp/client.out")
held_line=$(sed -n 2p "$tmp/client.out")
echo "client: exit status $cst after $((ms / 1000)) s"
sed 's/^/  /' "$tmp/client.out"
case $summary in
"echo_client: $connections connections, "*" bytes verified, 0 errors") ;;
*) fail "the client's summary is not '$connections connections, ... bytes verified, 0 errors'" ;;
esac
verified=$(echo "$summary" | sed -n 's/.* connections, \([0-9]*\) bytes verified.*/\1/p')
held=$(echo "$held_line" | sed -n 's/^echo_client: \([0-9]*\) connections held at once for \([0-9.]*\) s.*/\1/p')
held_s=$(echo "$held_line" | sed -n 's/^echo_client: \([0-9]*\) connections held at once for \([0-9.]*\) s.*/\2/p')
if [ "$cst" -ne 0 ]; then
    fail "client exit status $cst (124: timed out); its stderr:"
    head -n 20 "$tmp/client.err" | sed 's/^/    /'
fi
if [ "${held:-0}" -ne "$connections" ]; then
    fail "the client held ${held:-no} connections at once, not $connections"
fi
if [ -z "$held_s" ] || awk -v h="$held_s" -v s="$seconds" 'BEGIN { exit !(h < s) }'; then
    fail "the connections were held ${held_s:-no} s at once, not $seconds"
fi
if [ "${verified:-0}" -eq 0 ]; then
    fail "no bytes verified"
fi

# The window: from SOAK_FROM to a second before the client's last possible
# start of closing (its clock starts once all are connected, after ours, so
# a sample before $seconds is inside the held time).
awk -v from=$((from * 1000)) -v to=$(((seconds - 1) * 1000)) \
    '$1 >= from && $1 <= to' "$samples" >"$tmp/window"
nwin=$(wc -l <"$tmp/window")
if [ "$nwin" -lt 2 ]; then
    fail "only $nwin samples between ${from} s and $((seconds - 1)) s"
    first_fds=0 last_fds=0 first_rss=0 last_rss=0
else
    read -r first_ms first_fds first_rss <"$tmp/window"
    read -r last_ms last_fds last_rss < <(tail -n 1 "$tmp/window")
    expect_fds=$((base_fds + connections))
    bad=$(awk -v want="$expect_fds" '$2 != want' "$tmp/window" | head -n 3)
    if [ -n "$bad" ]; then
        fail "samples where the server did not have $expect_fds fds ($base_fds + $connections) open (ms fds rss-KiB):"
        echo "$bad" | sed 's/^/    /'
    fi
    bad=$(awk -v max=$((first_rss + rss_slack)) '$3 > max' "$tmp/window" | head -n 3)
    if [ -n "$bad" ]; then
        fail "RSS grew more than $rss_slack KiB past the sample at $((first_ms / 1000)) s ($first_rss KiB) (ms fds rss-KiB):"
        echo "$bad" | sed 's/^/    /'
    fi
    echo "samples: $nwin from $((first_ms / 1000)) s to $((last_ms / 1000)) s:" \
        "fds $first_fds -> $last_fds, RSS $first_rss -> $last_rss KiB" \
        "(max $(awk 'NR == 1 || $3 > m { m = $3 } END { print m }' "$tmp/window") KiB)"
fi

# Each connection ends with our end of file echoed back as the server's:
# it closes its side then, and its fds must all come back.
for _ in $(seq 200); do
    [ "$(fd_count "$server")" -eq "$base_fds" ] && break
    sleep 0.05
done
fds=$(fd_count "$server")
[ "$fds" -eq "$base_fds" ] || fail "the server has $fds fds open after the clients left, $base_fds before they came"

kill -TERM "$server"
for _ in $(seq 200); do
    running "$server" || break
    sleep 0.05
done
if running "$server"; then
    fail "the server still runs 10 s after SIGTERM; killed"
    kill -KILL "$server"
fi
wait "$server"
sst=$?
server=
[ "$sst" -eq 0 ] || fail "server exit status $sst, expected 0"
echo "echo_server: SIGTERM, closing 0 connections" >"$tmp/expect.err"
if ! cmp -s "$tmp/expect.err" "$tmp/server.err"; then
    fail "server stderr is not just its SIGTERM line:"
    head -n 20 "$tmp/server.err" | sed 's/^/    /'
fi

[ "$failed" -eq 0 ] || exit 1
bytes=$(awk -v b="$verified" 'BEGIN { printf "%.3g", b }' | sed 's/e+0*/e/')
echo "figure: echo soak: $connections connections held ${held_s} s, $bytes bytes verified," \
    "RSS $(mib "$first_rss") -> $(mib "$last_rss") MiB, fds $first_fds -> $last_fds"
