package lockmgr

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// Timeout accuracy and NOWAIT latency are measured by benchmarks (issue 2's
// goals: a 50 ms timeout fires by 75 ms at p99 over 1,000 trials; NOWAIT p99
// under 1 ms over 10,000), never asserted on a clock in a test, which a busy
// machine fails. The tests check what must hold however slow the machine:
// never early, the right error, nothing left behind, the queue unchanged.
//
//	go test -run '^$' -bench 'TimeoutAccuracy|NoWaitLatency' -benchtime 1x ./lockmgr

const (
	timeoutTrials = 1000
	trialTimeout  = 50 * time.Millisecond
	noWaitTrials  = 10000
)

// TestTimeoutAccuracy: a 50ms lock timeout never fires early, ends with
// ErrLockTimeout, and each trial leaves nothing behind.
func TestTimeoutAccuracy(t *testing.T) {
	lat := runTimeoutTrials(t, timeoutTrials)
	slices.Sort(lat)
	t.Logf("50ms timeout: p50 %v, p99 %v, max %v", lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
}

// BenchmarkTimeoutAccuracy reports how late 1,000 50ms timeouts fire.
func BenchmarkTimeoutAccuracy(b *testing.B) {
	for b.Loop() {
		lat := runTimeoutTrials(b, timeoutTrials)
		slices.Sort(lat)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
		b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
		b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	}
}

// runTimeoutTrials runs trials 50ms timeouts, 100 at a time on distinct
// keys (so a run takes about half a second), and returns their durations.
func runTimeoutTrials(tb testing.TB, trials int) []time.Duration {
	const batch = 100
	m := New(nil)
	defer m.Close()
	var lat []time.Duration
	for b := 0; b < trials/batch; b++ {
		lat = append(lat, timeoutBatch(tb, m, b, batch)...)
		if l := m.Locks(); len(l) != 0 {
			tb.Fatalf("after batch %d: %d entries left", b, len(l))
		}
	}
	if w, e := m.graph.Len(); w+e != 0 {
		tb.Errorf("graph not empty: %d waiters, %d edges", w, e)
	}
	return lat
}

func timeoutBatch(tb testing.TB, m *Manager, b, batch int) []time.Duration {
	ctx := context.Background()
	res := make([]time.Duration, batch)
	errs := make([]error, batch)
	for i := range batch {
		if err := m.Acquire(ctx, uint64(1+i), Point(fmt.Appendf(nil, "k%d", i)), Exclusive, Block, Forever); err != nil {
			tb.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range batch {
		wg.Go(func() {
			start := time.Now()
			errs[i] = m.Acquire(ctx, uint64(1000+i), Point(fmt.Appendf(nil, "k%d", i)), Exclusive, Block, trialTimeout)
			res[i] = time.Since(start)
		})
	}
	wg.Wait()
	for i := range batch {
		if !errors.Is(errs[i], ErrLockTimeout) {
			tb.Fatalf("trial %d: %v, want lock timeout", b*batch+i, errs[i])
		}
		if res[i] < trialTimeout {
			tb.Fatalf("trial %d: timed out early after %v", b*batch+i, res[i])
		}
		m.ReleaseAll(uint64(1 + i))
	}
	return res
}

// TestNoWaitLatency: NOWAIT against a held key with a queue behind it fails
// with ErrLockNotAvailable and never changes the queue.
func TestNoWaitLatency(t *testing.T) {
	lat := runNoWaitTrials(t, noWaitTrials)
	t.Logf("NOWAIT: p50 %v, p99 %v", lat[len(lat)/2], lat[len(lat)*99/100])
}

// BenchmarkNoWaitLatency reports the p50 and p99 of 10,000 NOWAIT refusals.
func BenchmarkNoWaitLatency(b *testing.B) {
	for b.Loop() {
		lat := runNoWaitTrials(b, noWaitTrials)
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
		b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
	}
}

// runNoWaitTrials returns the sorted durations of trials NOWAIT refusals.
func runNoWaitTrials(tb testing.TB, trials int) []time.Duration {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	key := Point([]byte("k"))
	if err := m.Acquire(ctx, 1, key, Exclusive, Block, Forever); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, key, Exclusive, Block, Forever) }()
	waitUntilWaiting(tb, m, 2)
	before := formatLocks(m.Locks())
	lat := make([]time.Duration, trials)
	for i := range trials {
		start := time.Now()
		err := m.Acquire(ctx, uint64(100+i), key, Exclusive, NoWait, Forever)
		lat[i] = time.Since(start)
		if !errors.Is(err, ErrLockNotAvailable) {
			tb.Fatalf("trial %d: %v", i, err)
		}
	}
	if after := formatLocks(m.Locks()); after != before {
		tb.Errorf("queue changed:\nbefore %s\nafter  %s", before, after)
	}
	m.ReleaseAll(1)
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	m.ReleaseAll(2)
	slices.Sort(lat)
	return lat
}
