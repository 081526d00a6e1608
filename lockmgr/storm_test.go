package lockmgr

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// TestDeadlockStorm: 10,000 transactions, 64 at a time, on 16 keys, each
// X-locking 2-4 keys in random order. No hang (every wait is bounded by a
// generous ctx deadline that must never fire), every deadlock error is
// reported once to its victim and once to OnDeadlock, names a well-formed
// cycle containing the victim, and no two victims carry the same cycle; at
// the end the lock table and the wait-for graph are empty.
func TestDeadlockStorm(t *testing.T) {
	const (
		total       = 10000
		concurrency = 64
		keys        = 16
	)
	n := total
	if testing.Short() {
		n = 1000
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	var (
		mu        sync.Mutex
		callbacks = map[uint64]int{} // victim -> OnDeadlock calls
		cycles    = map[string]uint64{}
	)
	m := New(&Options{OnDeadlock: func(e *DeadlockError) {
		mu.Lock()
		callbacks[e.Victim]++
		mu.Unlock()
	}})
	defer m.Close()

	var nextTxn, victims, commits atomic.Uint64
	work := make(chan int)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, concurrency)
	for w := range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for range work {
				txn := nextTxn.Add(1)
				perm := rng.Perm(keys)[:2+rng.IntN(3)]
				var err error
				for _, k := range perm {
					if err = m.Acquire(ctx, txn, Point([]byte(fmt.Sprintf("k%02d", k))), Exclusive, Block, Forever); err != nil {
						break
					}
					runtime.Gosched() // interleave even at GOMAXPROCS=1
				}
				var de *DeadlockError
				switch {
				case err == nil:
					commits.Add(1)
				case errors.As(err, &de):
					if de.Victim != txn || !errors.Is(err, ErrDeadlock) {
						errc <- fmt.Errorf("txn %d got a deadlock error for victim %d", txn, de.Victim)
					}
					if msg := checkCycle(de); msg != "" {
						errc <- fmt.Errorf("txn %d: %s", txn, msg)
					}
					mu.Lock()
					sig := fmt.Sprint(de.Cycle)
					if other, dup := cycles[sig]; dup {
						errc <- fmt.Errorf("txns %d and %d were both victims of cycle %s", other, txn, sig)
					}
					cycles[sig] = txn
					mu.Unlock()
					victims.Add(1)
				default:
					errc <- fmt.Errorf("txn %d: %v", txn, err)
				}
				m.ReleaseAll(txn)
			}
		}()
	}
	for i := range n {
		select {
		case work <- i:
		case err := <-errc:
			t.Fatal(err)
		}
	}
	close(work)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := uint64(len(callbacks)); got != victims.Load() {
		t.Errorf("OnDeadlock saw %d victims, Acquire returned %d deadlock errors", got, victims.Load())
	}
	for v, c := range callbacks {
		if c != 1 {
			t.Errorf("OnDeadlock called %d times for victim %d", c, v)
		}
	}
	if s := m.Stats(); s.Deadlocks != victims.Load() {
		t.Errorf("Stats.Deadlocks = %d, want %d", s.Deadlocks, victims.Load())
	}
	if l := m.Locks(); len(l) != 0 {
		t.Errorf("lock table not empty: %v", l)
	}
	if w, e := m.graph.Len(); w != 0 || e != 0 {
		t.Errorf("graph not empty: %d waiters, %d edges", w, e)
	}
	t.Logf("%d transactions: %d committed, %d deadlock victims", n, commits.Load(), victims.Load())
	if victims.Load() == 0 {
		t.Errorf("no deadlock in the storm: the test exercised nothing")
	}
}

// checkCycle validates a deadlock report: a closed chain of edges that
// contains the victim.
func checkCycle(de *DeadlockError) string {
	edges := make([]deadlock.Edge, len(de.Cycle))
	hasVictim := false
	for i, e := range de.Cycle {
		edges[i] = deadlock.Edge{Waiter: e.Waiter, Holder: e.Holder}
		hasVictim = hasVictim || e.Waiter == de.Victim
	}
	if !deadlock.IsCycle(edges) {
		return fmt.Sprintf("report is not a cycle: %v", de.Cycle)
	}
	if !hasVictim {
		return fmt.Sprintf("victim %d not in its cycle %v", de.Victim, de.Cycle)
	}
	return ""
}

// TestAgedRetriesCommit: logical transactions X-lock keys of 16 in random
// order, 64 at a time - one in eight locks 8 keys, the others 2 - and a
// deadlock victim retries under a new ID, as an engine's Update does, with
// SetAge giving every attempt the first attempt's ID. The victim of a cycle
// is then its youngest logical transaction: the oldest active one never
// loses, and once the transactions older than it are done a retried one is
// the oldest, so none starves. Every transaction must commit; the worst
// number of attempts is logged, next to the same storm without ages (where
// nothing bounds a transaction's losses: each retry is the youngest again).
func TestAgedRetriesCommit(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 500
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	aged := retryStorm(t, seed, n, true)
	plain := retryStorm(t, seed, n, false)
	t.Logf("%d transactions: worst attempts %d with ages, %d without", n, aged, plain)
	if aged > 256 {
		t.Errorf("a transaction needed %d attempts with ages", aged)
	}
}

// retryStorm runs n logical transactions and returns the most attempts one
// needed.
func retryStorm(t *testing.T, seed uint64, n int, aged bool) int {
	const concurrency, keys = 64, 16
	m := New(nil)
	defer m.Close()
	var nextID atomic.Uint64
	var worst atomic.Int64
	work := make(chan int)
	var wg sync.WaitGroup
	for w := range concurrency {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range work {
				size := 2
				if i%8 == 0 {
					size = 8
				}
				first, attempts := nextID.Add(1), 0
				for txn := first; ; txn = nextID.Add(1) {
					attempts++
					if aged {
						m.SetAge(txn, first)
					}
					if runAttempt(t, m, rng, txn, rng.Perm(keys)[:size]) {
						break
					}
				}
				for old := worst.Load(); int64(attempts) > old && !worst.CompareAndSwap(old, int64(attempts)); old = worst.Load() {
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return int(worst.Load())
}

// runAttempt locks keys for txn, in order, and releases them; it reports
// false if txn was a deadlock victim.
func runAttempt(t *testing.T, m *Manager, rng *rand.Rand, txn uint64, keys []int) bool {
	defer m.ReleaseAll(txn)
	for _, k := range keys {
		err := m.Acquire(context.Background(), txn, Point([]byte(fmt.Sprintf("k%02d", k))), Exclusive, Block, Forever)
		switch {
		case err == nil:
			runtime.Gosched() // interleave even at GOMAXPROCS=1
		case errors.Is(err, ErrDeadlock):
			return false
		default:
			t.Errorf("txn %d: %v", txn, err)
			return true
		}
	}
	return true
}
