// Command go-peer is the Go peer of urt's benchmark suite: each workload of
// bench/README.md written the way Go users write it, with goroutines and the
// standard library only, speaking the suite's RESULT-line protocol.
package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// Exit status of a workload this program does not implement
// (BENCH_UNSUPPORTED in bench/common.h).
const exitUnsupported = 3

var workloads = map[string]func(args []string) error{
	"spawn":       runSpawn,
	"switch":      runSwitch,
	"sleepers":    runSleepers,
	"timer":       runTimer,
	"echo-server": runEchoServer,
	"file":        runFile,
}

// skipError is a workload that cannot run here: it is reported as
// "SKIP workload reason" with exit status 0, as the protocol asks.
type skipError struct{ reason string }

func (e skipError) Error() string { return e.reason }

func main() {
	// One P: the suite compares one thread per runtime (Tokio's
	// current_thread, one urt loop), so goroutines get no parallelism.
	// Threads blocked in system calls still come on top; see file.go.
	runtime.GOMAXPROCS(1)

	if len(os.Args) < 2 {
		usage()
	}
	name := os.Args[1]
	run, ok := workloads[name]
	if !ok {
		fmt.Printf("UNSUPPORTED %s\n", name)
		os.Exit(exitUnsupported)
	}
	err := run(os.Args[2:])
	var skip skipError
	if errors.As(err, &skip) {
		fmt.Printf("SKIP %s %s\n", name, skip.reason)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-peer %s: %v\n", name, err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: go-peer WORKLOAD ARGS... (bench/README.md)
  go-peer spawn N
  go-peer switch N
  go-peer sleepers N MS
  go-peer timer N MS
  go-peer echo-server HOST:PORT
  go-peer file PATH TASKS SECONDS DIRECT
`)
	os.Exit(2)
}

// wantArgs exits with the usage message unless the workload got n arguments.
func wantArgs(args []string, n int) {
	if len(args) != n {
		usage()
	}
}

// count parses a decimal argument of at least min, as bench_count does in
// bench/common.h, exiting with the usage message otherwise.
func count(s string, min int) int {
	v, err := strconv.Atoi(s)
	if err != nil || v < min {
		fmt.Fprintf(os.Stderr, "go-peer: %q: want a whole number of at least %d\n", s, min)
		usage()
	}
	return v
}

func result(name string, value float64) {
	// os.Stdout is unbuffered, so each line is out before the next step.
	fmt.Printf("RESULT %s %.3f\n", name, value)
}

func maxRSSKiB() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss // KiB on Linux
}

// percentile returns the sample at percentile p (0 < p <= 100) of sorted,
// with the rank rule of hist_percentile in bench/hist.h, so the figures line
// up with the C peers' (theirs are bucket edges at most 0.8% above).
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100 + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

func micros(d time.Duration) float64 {
	return float64(d) / float64(time.Microsecond)
}
