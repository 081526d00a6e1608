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

// TestTimeoutAccuracy: a 50ms lock timeout fires no earlier than 50ms and,
// at the 99th percentile over 1,000 trials, no later than 75ms; each trial
// leaves nothing behind. Trials run 100 at a time (distinct keys) so the
// test takes about half a second.
func TestTimeoutAccuracy(t *testing.T) {
	const (
		trials  = 1000
		batch   = 100
		timeout = 50 * time.Millisecond
		p99Max  = 75 * time.Millisecond
	)
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	var lat []time.Duration
	for b := 0; b < trials/batch; b++ {
		res := make([]time.Duration, batch)
		errs := make([]error, batch)
		for i := range batch {
			if err := m.Acquire(ctx, uint64(1+i), Point(fmt.Appendf(nil, "k%d", i)), Exclusive, Block, 0); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				errs[i] = m.Acquire(ctx, uint64(1000+i), Point(fmt.Appendf(nil, "k%d", i)), Exclusive, Block, timeout)
				res[i] = time.Since(start)
			}()
		}
		wg.Wait()
		for i := range batch {
			if !errors.Is(errs[i], ErrLockTimeout) {
				t.Fatalf("trial %d: %v, want lock timeout", b*batch+i, errs[i])
			}
			if res[i] < timeout {
				t.Fatalf("trial %d: timed out early after %v", b*batch+i, res[i])
			}
			m.ReleaseAll(uint64(1 + i))
		}
		lat = append(lat, res...)
		if l := m.Locks(); len(l) != 0 {
			t.Fatalf("after batch %d: %d entries left", b, len(l))
		}
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	t.Logf("50ms timeout: p50 %v, p99 %v, max %v", p50, p99, lat[len(lat)-1])
	if p99 > p99Max {
		t.Errorf("p99 %v > %v", p99, p99Max)
	}
	if w, e := m.graph.Len(); w+e != 0 {
		t.Errorf("graph not empty: %d waiters, %d edges", w, e)
	}
}

// TestNoWaitLatency: NOWAIT against a held key with a queue behind it fails
// in under 1ms at p99 over 10,000 trials and never changes the queue.
func TestNoWaitLatency(t *testing.T) {
	const trials = 10000
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	key := Point([]byte("k"))
	if err := m.Acquire(ctx, 1, key, Exclusive, Block, 0); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, key, Exclusive, Block, 0) }()
	waitUntilWaiting(t, m, 2)
	before := formatLocks(m.Locks())
	lat := make([]time.Duration, trials)
	for i := range trials {
		start := time.Now()
		err := m.Acquire(ctx, uint64(100+i), key, Exclusive, NoWait, 0)
		lat[i] = time.Since(start)
		if !errors.Is(err, ErrLockNotAvailable) {
			t.Fatalf("trial %d: %v", i, err)
		}
	}
	if after := formatLocks(m.Locks()); after != before {
		t.Errorf("queue changed:\nbefore %s\nafter  %s", before, after)
	}
	slices.Sort(lat)
	p99 := lat[trials*99/100]
	t.Logf("NOWAIT: p50 %v, p99 %v", lat[trials/2], p99)
	if p99 >= time.Millisecond {
		t.Errorf("NOWAIT p99 %v >= 1ms", p99)
	}
	m.ReleaseAll(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.ReleaseAll(2)
}
