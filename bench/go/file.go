package main

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const blockSize = 4096

func runFile(args []string) error {
	wantArgs(args, 4)
	path := args[0]
	tasks := count(args[1], 1)
	seconds := count(args[2], 1)
	direct := count(args[3], 0)
	if direct > 1 {
		usage()
	}

	flags := os.O_RDONLY
	if direct == 1 {
		flags |= syscall.O_DIRECT
	}
	f, err := os.OpenFile(path, flags, 0)
	if direct == 1 && errors.Is(err, syscall.EINVAL) {
		return errNoDirect
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	blocks := st.Size() / blockSize
	if blocks == 0 {
		return fmt.Errorf("%s: smaller than one %d-byte block", path, blockSize)
	}

	// Some file systems take O_DIRECT at open and refuse it at the first read.
	probe := alignedBlock()
	if _, err := f.ReadAt(probe, 0); err != nil {
		if direct == 1 && errors.Is(err, syscall.EINVAL) {
			return errNoDirect
		}
		return err
	}

	// os.File reads are blocking pread calls, not netpoller events: a
	// goroutine in one holds an OS thread, and the runtime hands the P to
	// another thread so the other goroutines go on, even with GOMAXPROCS(1).
	// So Go's concurrent file reads come from a pool of threads, as
	// libuv's do; that is what Go users get.
	lat := make([][]time.Duration, tasks)
	errs := make([]error, tasks)
	var wg sync.WaitGroup
	wg.Add(tasks)
	start := time.Now()
	deadline := start.Add(time.Duration(seconds) * time.Second)
	for i := 0; i < tasks; i++ {
		go func(i int) {
			defer wg.Done()
			lat[i], errs[i] = reader(f, blocks, int64(i), deadline)
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			return err
		}
	}

	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	sortDurations(all)
	result("file_reads_per_s", float64(len(all))/elapsed.Seconds())
	result("file_p99_us", micros(percentile(all, 99)))
	return nil
}

// reader reads random blocks of f until the deadline, returning the latency
// of every read. Its own rand source, seeded by its index, keeps the runs
// repeatable and the goroutines off math/rand's shared, locked one.
func reader(f *os.File, blocks, index int64, deadline time.Time) ([]time.Duration, error) {
	rng := rand.New(rand.NewSource(0x5eed + index))
	buf := alignedBlock()
	var lat []time.Duration
	for now := time.Now(); now.Before(deadline); {
		off := rng.Int63n(blocks) * blockSize
		n, err := f.ReadAt(buf, off)
		if err != nil {
			return nil, err
		}
		if n != blockSize {
			return nil, fmt.Errorf("read of %d bytes at %d returned %d", blockSize, off, n)
		}
		end := time.Now()
		lat = append(lat, end.Sub(now))
		now = end
	}
	return lat, nil
}

// alignedBlock returns a block-sized buffer at a block-aligned address, as
// O_DIRECT wants; Go has no aligned allocation, so it is cut out of a buffer
// twice the size. The garbage collector does not move heap objects.
func alignedBlock() []byte {
	raw := make([]byte, 2*blockSize)
	skip := int(-uintptr(unsafe.Pointer(&raw[0])) & (blockSize - 1))
	return raw[skip : skip+blockSize]
}

var errNoDirect = skipError{"O_DIRECT not supported here"}
