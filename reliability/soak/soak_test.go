package soak_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

// errAbort is what a transaction function returns to roll back on purpose.
var errAbort = errors.New("soak: deliberate abort")

const (
	workers    = 8
	sharedKeys = 64
	// warmup transactions run before the heap baseline: enough for every
	// bounded structure (the Watch ring keeps 8,192 commits) to fill.
	warmup = 15000
)

// soakSize is the main phase's transaction count: TXKV_SOAK_TXNS, default 20,000.
func soakSize(t *testing.T) int { return testenv.Int(t, "TXKV_SOAK_TXNS", 20000) }

// outcome is how one transaction ended.
type outcome int

const (
	committed    outcome = iota
	aborted              // the function returned errAbort
	deadlocked           // ErrDeadlock: the victim of an opposite-order pair
	timedOut             // ErrLockTimeout
	notAvailable         // ErrLockNotAvailable (NOWAIT)
	numOutcomes
)

var outcomeNames = [numOutcomes]string{"committed", "aborted", "deadlock", "timeout", "nowait"}

type counts [numOutcomes]atomic.Int64

func (c *counts) String() string {
	var b bytes.Buffer
	for i := range c {
		fmt.Fprintf(&b, "%s=%d ", outcomeNames[i], c[i].Load())
	}
	return b.String()
}

func (c *counts) total() int64 {
	var n int64
	for i := range c {
		n += c[i].Load()
	}
	return n
}

var strategies = []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive}

// soak runs transactions on db from the workers until n have ended.
type soak struct {
	db  *txkv.DB
	out *counts
}

func (s *soak) phase(t *testing.T, seed uint64, n int) {
	t.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for next.Add(1) <= int64(n) {
				if err := s.one(r, w); err != nil {
					errs <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// one runs one unit of work. The lock scenarios are two transactions each
// and count as two.
func (s *soak) one(r *rand.Rand, w int) error {
	switch p := r.IntN(100); {
	case p < 70:
		return s.readModifyWrite(r)
	case p < 80:
		return s.abort(r)
	case p < 90:
		return s.deadlock(w)
	case p < 95:
		return s.timeout(w)
	default:
		return s.noWait(w)
	}
}

func sharedKey(r *rand.Rand) []byte { return []byte("shared/" + strconv.Itoa(r.IntN(sharedKeys))) }

// ownKey is a key only worker w's lock scenarios use, so that their outcome
// does not depend on the other workers.
func ownKey(w int, name string) []byte { return []byte("w" + strconv.Itoa(w) + "/" + name) }

// readModifyWrite increments 1-3 shared counters under a random strategy;
// Update retries conflicts and deadlocks, so it must commit.
func (s *soak) readModifyWrite(r *rand.Rand) error {
	keys := make([][]byte, 1+r.IntN(3))
	for i := range keys {
		keys[i] = sharedKey(r)
	}
	opts := &txkv.TxOptions{Strategy: strategies[r.IntN(len(strategies))],
		Retry: &txkv.RetryPolicy{MaxAttempts: 100}}
	err := s.db.Update(bg, opts, func(tx *txkv.Tx) error {
		for _, k := range keys {
			if err := increment(tx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read-modify-write: %w", err)
	}
	s.out[committed].Add(1)
	return nil
}

func increment(tx *txkv.Tx, k []byte) error {
	v, err := tx.Get(k)
	if err != nil && !errors.Is(err, txkv.ErrNotFound) {
		return err
	}
	var n uint64
	if len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return tx.Put(k, binary.BigEndian.AppendUint64(nil, n+1))
}

// abort writes and then rolls back by returning an error from fn.
func (s *soak) abort(r *rand.Rand) error {
	opts := &txkv.TxOptions{Strategy: strategies[r.IntN(len(strategies))]}
	err := s.db.Update(bg, opts, func(tx *txkv.Tx) error {
		if err := increment(tx, sharedKey(r)); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		return fmt.Errorf("abort: Update returned %v, want errAbort", err)
	}
	s.out[aborted].Add(1)
	return nil
}

func begin(db *txkv.DB) (*txkv.Tx, error) {
	return db.Begin(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "soak"})
}

// deadlock: T1 locks a, T2 locks b; then T1 asks for b while T2 asks for a.
// Exactly one must be the victim; the other gets its lock and commits.
func (s *soak) deadlock(w int) error {
	a, b := ownKey(w, "a"), ownKey(w, "b")
	t1, err := begin(s.db)
	if err != nil {
		return err
	}
	t2, err := begin(s.db)
	if err != nil {
		_ = t1.Rollback()
		return err
	}
	if _, err := lockPut(t1, a); err != nil {
		return fmt.Errorf("deadlock setup: %w", errors.Join(err, t1.Rollback(), t2.Rollback()))
	}
	if _, err := lockPut(t2, b); err != nil {
		return fmt.Errorf("deadlock setup: %w", errors.Join(err, t1.Rollback(), t2.Rollback()))
	}
	res := make(chan error, 1)
	go func() { res <- finish(t2, a) }() // waits for T1's a
	err1 := finish(t1, b)                // waits for T2's b: the cycle closes
	err2 := <-res
	switch {
	case err1 == nil && errors.Is(err2, txkv.ErrDeadlock), errors.Is(err1, txkv.ErrDeadlock) && err2 == nil:
		s.out[committed].Add(1)
		s.out[deadlocked].Add(1)
		return nil
	}
	return fmt.Errorf("deadlock pair ended with %v and %v, want one nil and one ErrDeadlock", err1, err2)
}

// lockPut locks k exclusively and writes it.
func lockPut(tx *txkv.Tx, k []byte, opts ...txkv.LockOption) ([]byte, error) {
	v, err := tx.GetForUpdate(k, opts...)
	if err != nil && !errors.Is(err, txkv.ErrNotFound) {
		return nil, err
	}
	return v, tx.Put(k, []byte("x"))
}

// finish locks and writes k, then commits; on error it rolls back.
func finish(tx *txkv.Tx, k []byte) error {
	if _, err := lockPut(tx, k); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// timeout: T1 holds k; T2's request with a 1ms WaitTimeout must time out.
func (s *soak) timeout(w int) error {
	return s.blocked(w, "t", timedOut, txkv.ErrLockTimeout, txkv.WaitTimeout(time.Millisecond))
}

// noWait: T1 holds k; T2's NOWAIT request must fail at once, and T2 stays
// usable: it writes another key and commits.
func (s *soak) noWait(w int) error {
	return s.blocked(w, "n", notAvailable, txkv.ErrLockNotAvailable, txkv.NoWait())
}

func (s *soak) blocked(w int, name string, o outcome, want error, opt txkv.LockOption) error {
	k := ownKey(w, name)
	t1, err := begin(s.db)
	if err != nil {
		return err
	}
	if _, err := lockPut(t1, k); err != nil {
		return errors.Join(err, t1.Rollback())
	}
	t2, err := begin(s.db)
	if err != nil {
		return errors.Join(err, t1.Rollback())
	}
	if _, err := lockPut(t2, k, opt); !errors.Is(err, want) {
		return fmt.Errorf("%s: request returned %v, want %v", outcomeNames[o], errors.Join(err, t1.Rollback(), t2.Rollback()), want)
	}
	s.out[o].Add(1)
	if o == notAvailable { // NOWAIT leaves the transaction usable
		if err := finish(t2, ownKey(w, name+"2")); err != nil {
			return errors.Join(fmt.Errorf("after NOWAIT: %w", err), t1.Rollback())
		}
		s.out[committed].Add(1)
	} else if err := t2.Rollback(); err != nil && !errors.Is(err, txkv.ErrTxDone) {
		return errors.Join(err, t1.Rollback())
	}
	if err := t1.Commit(); err != nil {
		return err
	}
	s.out[committed].Add(1)
	return nil
}

// heapAfterGC is the live heap after a full collection.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func TestSoak(t *testing.T) {
	seed := testenv.Seed(t, "TXKV_SOAK_SEED")
	n := soakSize(t)

	opts := txkv.DefaultOptions()
	opts.Sync = txkv.SyncNone
	opts.CheckpointBytes = 1 << 20 // checkpoint and truncate the log often
	db, err := txkv.Open(filepath.Join(t.TempDir(), "soak.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	s := &soak{db: db, out: &counts{}}

	start := time.Now()
	s.phase(t, seed, warmup)
	heap0, gor0 := heapAfterGC(), runtime.NumGoroutine()
	t.Logf("warm-up: %d transactions in %v; heap %d KiB, %d goroutines", s.out.total(), time.Since(start), heap0>>10, gor0)
	s.out = &counts{}

	start = time.Now()
	s.phase(t, seed+1, n)
	elapsed := time.Since(start)
	quiet(t, db, gor0)
	heap1 := heapAfterGC()
	st := db.Stats()
	t.Logf("main: %d units, %d transactions in %v (%.0f/s): %s", n, s.out.total(), elapsed,
		float64(s.out.total())/elapsed.Seconds(), s.out)
	t.Logf("db stats: commits=%d aborts=%d conflicts=%d deadlocks=%d lock-timeouts=%d nowait=%d retries=%d lock-waits=%d checkpoints=%d",
		st.Commits, st.Aborts, st.Conflicts, st.Deadlocks, st.LockTimeouts, st.NotAvailable, st.Retries, st.LockWaits, st.Checkpoints)
	t.Logf("heap after GC: start %d KiB, end %d KiB (%+.1f%%)", heap0>>10, heap1>>10, 100*(float64(heap1)/float64(heap0)-1))

	for o := range numOutcomes {
		if s.out[o].Load() == 0 {
			t.Errorf("no transaction ended as %s: the soak did not exercise it", outcomeNames[o])
		}
	}
	if st.Deadlocks < uint64(s.out[deadlocked].Load()) || st.LockTimeouts < uint64(s.out[timedOut].Load()) ||
		st.NotAvailable < uint64(s.out[notAvailable].Load()) {
		t.Errorf("Stats undercount what the workers saw: %+v vs %v", st, s.out)
	}
	if heap1 > heap0+heap0/10 {
		t.Errorf("heap grew from %d to %d bytes (> 10%%) over %d transactions", heap0, heap1, s.out.total())
	}
}

// quiet checks that nothing is left of the run: no lock holder or waiter,
// no wait-for edge, and no goroutine beyond the baseline (polled with a
// deadline: a goroutine that has returned may not have exited yet).
func quiet(t *testing.T, db *txkv.DB, goroutines int) {
	t.Helper()
	if locks := db.Locks(); len(locks) > 0 {
		t.Errorf("%d locks held or awaited after the run, first %+v", len(locks), locks[0])
	}
	var dot bytes.Buffer
	if err := db.WriteWaitForGraph(&dot); err != nil {
		t.Errorf("WriteWaitForGraph: %v", err)
	}
	if bytes.Contains(dot.Bytes(), []byte("->")) {
		t.Errorf("wait-for graph has edges after the run:\n%s", dot.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines after the run, %d after warm-up:\n%s", runtime.NumGoroutine(), goroutines, buf[:runtime.Stack(buf, true)])
			return
		}
		runtime.Gosched()
	}
}
