package lockmgr

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAcquireReleaseUncontended is the fast path: one transaction, a
// free key, Acquire X then ReleaseAll. Goal: <= 200 ns/op, 0 allocs/op.
func BenchmarkAcquireReleaseUncontended(b *testing.B) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	key := []byte("account:42")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		txn := uint64(i + 1)
		if err := m.Acquire(ctx, txn, Point(key), Exclusive, Block, Forever); err != nil {
			b.Fatal(err)
		}
		m.ReleaseAll(txn)
	}
}

// BenchmarkMutexMapUncontended is the floor for the benchmark above: a
// pre-built map of sync.Mutex, looked up by key, locked and unlocked.
func BenchmarkMutexMapUncontended(b *testing.B) {
	locks := map[string]*sync.Mutex{"account:42": new(sync.Mutex)}
	key := []byte("account:42")
	b.ReportAllocs()
	for b.Loop() {
		mu := locks[string(key)]
		mu.Lock()
		//lint:ignore SA2001 the floor measures lock+unlock alone
		mu.Unlock()
	}
}

// BenchmarkAcquireReleaseParallel: every goroutine locks its own keys
// (distinct keys, no contention on locks; only shard and txn-table mutexes
// are shared). Run with -cpu 1,2 to see the scaling.
func BenchmarkAcquireReleaseParallel(b *testing.B) {
	b.Run("lockmgr", func(b *testing.B) {
		m := New(nil)
		defer m.Close()
		var ids atomic.Uint64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			g := ids.Add(1)
			keys := make([][]byte, 64)
			for i := range keys {
				keys[i] = []byte("g" + strconv.FormatUint(g, 10) + "/k" + strconv.Itoa(i))
			}
			ctx := context.Background()
			txn := g << 40
			for i := 0; pb.Next(); i++ {
				txn++
				if err := m.Acquire(ctx, txn, Point(keys[i%len(keys)]), Exclusive, Block, Forever); err != nil {
					b.Error(err)
					return
				}
				m.ReleaseAll(txn)
			}
		})
	})
	b.Run("mutexmap", func(b *testing.B) {
		var mu sync.RWMutex // guards the map; the floor includes finding the lock
		locks := make(map[string]*sync.Mutex)
		var ids atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			g := ids.Add(1)
			keys := make([]string, 64)
			for i := range keys {
				keys[i] = "g" + strconv.FormatUint(g, 10) + "/k" + strconv.Itoa(i)
				mu.Lock()
				locks[keys[i]] = new(sync.Mutex)
				mu.Unlock()
			}
			for i := 0; pb.Next(); i++ {
				mu.RLock()
				l := locks[keys[i%len(keys)]]
				mu.RUnlock()
				l.Lock()
				//lint:ignore SA2001 the floor measures lock+unlock alone
				l.Unlock()
			}
		})
	})
}

// BenchmarkHotKeyEnqueue measures the cost of one more waiter joining (and
// leaving) the queue of a hot key that already has n waiters. With an edge
// to each holder and to the nearest earlier conflicting waiter only, and
// the deadlock search skipped for a waiter nobody waits for, the cost must
// stay flat as n grows (at most linear would be acceptable; quadratic is
// the failure mode). Each op: Acquire of an X lock that queues, then its
// context is cancelled and the request leaves.
func BenchmarkHotKeyEnqueue(b *testing.B) {
	for _, n := range []int{0, 16, 64, 256} {
		b.Run(fmt.Sprintf("waiters=%d", n), func(b *testing.B) {
			m := New(nil)
			defer m.Close()
			key := []byte("hot")
			ctx := context.Background()
			if err := m.Acquire(ctx, 1, Point(key), Exclusive, Block, Forever); err != nil {
				b.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range n {
				txn := uint64(100 + i)
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = m.Acquire(ctx, txn, Point(key), Exclusive, Block, Forever)
					m.ReleaseAll(txn)
				}()
				waitUntilWaiting(b, m, txn)
			}
			parked := make(chan struct{}, 1)
			const me = 1 << 40
			m.hooks.waiting = func(txn uint64) {
				if txn == me {
					parked <- struct{}{}
				}
			}
			b.ResetTimer()
			for range b.N {
				cctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() { done <- m.Acquire(cctx, me, Point(key), Exclusive, Block, Forever) }()
				<-parked
				cancel()
				if err := <-done; err != context.Canceled {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			m.hooks.waiting = nil
			m.ReleaseAll(1)
			wg.Wait()
		})
	}
}

// BenchmarkDeadlockRing measures end-to-end detection: n transactions each
// hold one key and wait for the next one's; the last request closes the
// ring and is aborted. ns/op covers building the ring and resolving it.
func BenchmarkDeadlockRing(b *testing.B) {
	for _, n := range []int{2, 4, 8, 16, 32, 64} {
		b.Run(fmt.Sprintf("len=%d", n), func(b *testing.B) {
			m := New(nil)
			defer m.Close()
			ctx := context.Background()
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = []byte("ring" + strconv.Itoa(i))
			}
			base := uint64(0)
			for b.Loop() {
				var wg sync.WaitGroup
				for i := range n {
					if err := m.Acquire(ctx, base+uint64(i+1), Point(keys[i]), Exclusive, Block, Forever); err != nil {
						b.Fatal(err)
					}
				}
				for i := range n - 1 {
					txn := base + uint64(i+1)
					wg.Add(1)
					go func() {
						defer wg.Done()
						_ = m.Acquire(ctx, txn, Point(keys[i+1]), Exclusive, Block, Forever)
					}()
					waitUntilWaiting(b, m, txn)
				}
				last := base + uint64(n)
				if err := m.Acquire(ctx, last, Point(keys[0]), Exclusive, Block, Forever); err == nil {
					b.Fatal("ring closed without a deadlock")
				}
				// Each release grants the previous waiter synchronously (the
				// hand-off happens under the lock), so releasing from the
				// victim down unwinds the ring.
				for i := n; i >= 1; i-- {
					m.ReleaseAll(base + uint64(i))
				}
				wg.Wait()
				base += uint64(n)
			}
		})
	}
}

// BenchmarkDrain measures the full drain of one hot key: a holder and n
// exclusive waiters queued behind it (set up untimed); the timed part
// releases the holder, then each waiter as soon as its Acquire returned,
// until the queue is empty. ns/op is the whole drain, ns/release the mean
// per release (hand-off and wake-up included). A release re-links O(1)
// waiters, so the drain is linear in n; goal: n=4000 under 20 ms.
func BenchmarkDrain(b *testing.B) {
	for _, n := range []int{250, 1000, 4000, 16000} {
		b.Run(fmt.Sprintf("waiters=%d", n), func(b *testing.B) {
			m := New(nil)
			defer m.Close()
			ctx := context.Background()
			key := Point([]byte("hot"))
			done := make([]chan error, n)
			for i := range done {
				done[i] = make(chan error, 1)
			}
			for i := range b.N {
				b.StopTimer()
				holder := uint64(i*(n+1) + 1)
				if err := m.Acquire(ctx, holder, key, Exclusive, Block, Forever); err != nil {
					b.Fatal(err)
				}
				for j := range n {
					txn := holder + uint64(j+1)
					go func() { done[j] <- m.Acquire(ctx, txn, key, Exclusive, Block, Forever) }()
					waitUntilWaiting(b, m, txn)
				}
				b.StartTimer()
				m.ReleaseAll(holder)
				for j := range n {
					if err := <-done[j]; err != nil {
						b.Fatal(err)
					}
					m.ReleaseAll(holder + uint64(j+1))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*(n+1)), "ns/release")
		})
	}
}

// waitUntilWaiting polls WaitingOn until txn is queued (no sleeping: the
// scheduler yields between polls).
func waitUntilWaiting(tb testing.TB, m *Manager, txn uint64) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := m.WaitingOn(txn); ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("txn %d never queued", txn)
		}
		runtimeYield()
	}
}
