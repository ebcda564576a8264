package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func runSpawn(args []string) error {
	wantArgs(args, 1)
	n := count(args[0], 1)

	// The warm-up grows the heap and the scheduler's free lists of
	// goroutines, so the timed pass measures a runtime already in use.
	if err := spawnPass(n); err != nil {
		return err
	}
	start := time.Now()
	err := spawnPass(n)
	elapsed := time.Since(start)
	if err != nil {
		return err
	}
	result("spawn_ns_per_task", float64(elapsed.Nanoseconds())/float64(n))
	result("peak_rss_kib", float64(maxRSSKiB()))
	return nil
}

// spawnPass starts n goroutines, each leaving its index in its own slot of a
// results slice, waits for them all, then checks the slots in creation order.
func spawnPass(n int) error {
	results := make([]int, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func(i int) {
			defer wg.Done()
			results[i] = i
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		if r != i {
			return fmt.Errorf("task %d returned %d", i, r)
		}
	}
	return nil
}

func runSwitch(args []string) error {
	wantArgs(args, 1)
	n := count(args[0], 2)
	half := n / 2

	// runtime.Gosched is a yield through the scheduler, as urt_yield and
	// tokio::task::yield_now are: with one P and the main goroutine parked,
	// each call hands the thread to the other goroutine.
	var wg sync.WaitGroup
	wg.Add(2)
	yielder := func() {
		defer wg.Done()
		for i := 0; i < half; i++ {
			runtime.Gosched()
		}
	}
	start := time.Now()
	go yielder()
	go yielder()
	wg.Wait()
	elapsed := time.Since(start)
	result("switch_ns", float64(elapsed.Nanoseconds())/float64(2*half))

	// The hand-off Go users more often write: a ping-pong on an unbuffered
	// channel, where each send wakes the other goroutine and parks the sender.
	ping, pong := make(chan int), make(chan int)
	wg.Add(2)
	start = time.Now()
	go func() {
		defer wg.Done()
		for i := 0; i < half; i++ {
			ping <- i
			<-pong
		}
		close(ping)
	}()
	go func() {
		defer wg.Done()
		for v := range ping {
			pong <- v
		}
	}()
	wg.Wait()
	elapsed = time.Since(start)
	result("switch_chan_ns", float64(elapsed.Nanoseconds())/float64(2*half))
	return nil
}

func runSleepers(args []string) error {
	wantArgs(args, 2)
	n := count(args[0], 1)
	d := time.Duration(count(args[1], 0)) * time.Millisecond

	before := maxRSSKiB()
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			defer wg.Done()
			time.Sleep(d)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := maxRSSKiB()

	result("sleepers_overshoot_ms", float64(elapsed-d)/float64(time.Millisecond))
	result("sleepers_rss_per_task_bytes", float64((after-before)*1024)/float64(n))
	return nil
}

func runTimer(args []string) error {
	wantArgs(args, 2)
	n := count(args[0], 1)
	d := time.Duration(count(args[1], 0)) * time.Millisecond

	// The main goroutine is the one task; time.Since reads the monotonic
	// clock that time.Now carries.
	over := make([]time.Duration, n)
	for i := range over {
		start := time.Now()
		time.Sleep(d)
		over[i] = time.Since(start) - d
	}
	sortDurations(over)
	result("timer_p50_us", micros(percentile(over, 50)))
	result("timer_p99_us", micros(percentile(over, 99)))
	result("timer_p999_us", micros(percentile(over, 99.9)))
	return nil
}
