package etcdkv_test

import (
	"errors"
	"testing"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
	"github.com/txkv/txkv/internal/conformance"
)

// openCounted opens a DB over a client whose KV requests (round trips)
// are counted (countKV, bench_test.go).
func openCounted(t *testing.T) (*txkv.DB, *countKV) {
	cli := newClient(t, 0)
	kv := &countKV{KV: cli.KV}
	cli.KV = kv
	// No detector: its campaign's requests would be counted.
	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: testPrefix(t), DeadlockInterval: etcdkv.DeadlockDetectionOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, kv
}

// NOWAIT is one round trip, granted or refused; a lock granted at once is
// one round trip too. A range lock elsewhere costs a second one.
func TestNoWaitRoundTrips(t *testing.T) {
	db, kv := openCounted(t)
	conformance.MustPut(t, db, "k", "v")
	t1, t2 := begin(t, db, txkv.Optimistic), begin(t, db, txkv.Optimistic)
	trips := func(what string, want int64, f func() error, wantErr error) {
		t.Helper()
		before := kv.calls.Load()
		if err := f(); !errors.Is(err, wantErr) {
			t.Fatalf("%s: %v, want %v", what, err, wantErr)
		}
		if got := kv.calls.Load() - before; got != want {
			t.Fatalf("%s: %d requests, want %d", what, got, want)
		}
	}
	lockK := func(tx *txkv.Tx, m txkv.LockMode) func() error {
		return func() error { return tx.LockKeys(m, []byte("k")) }
	}
	trips("a free X lock", 1, lockK(t1, txkv.Exclusive), nil)
	trips("a NOWAIT refused", 1, func() error { _, err := t2.GetForUpdate([]byte("k"), txkv.NoWait()); return err },
		txkv.ErrLockNotAvailable)
	trips("a NOWAIT granted (and the read)", 2, func() error { _, err := t2.GetForShare([]byte("free"), txkv.NoWait()); return err },
		txkv.ErrNotFound)
	trips("a re-entrant request", 0, lockK(t1, txkv.Shared), nil)
	if err := t1.LockRange([]byte("x"), []byte("y"), txkv.Shared); err != nil {
		t.Fatal(err)
	}
	trips("a NOWAIT granted beside a range elsewhere (and the read)", 3,
		func() error { _, err := t2.GetForUpdate([]byte("free2"), txkv.NoWait()); return err }, txkv.ErrNotFound)
}

// A Hybrid Update whose first attempt conflicts retries as strict 2PL,
// holding X on what it wrote before fn runs again; Adaptive runs as Hybrid.
func TestHybridRetryLocks(t *testing.T) {
	db := open1(t)
	conformance.MustPut(t, db, "k", "0")
	for _, s := range []txkv.Strategy{txkv.Hybrid, txkv.Adaptive} {
		var attempts []txkv.Strategy
		var heldX bool
		err := db.Update(bg, &txkv.TxOptions{Strategy: s}, func(tx *txkv.Tx) error {
			attempts = append(attempts, tx.Strategy())
			if len(attempts) == 2 {
				for _, l := range db.Locks() {
					heldX = heldX || (l.TxID == tx.ID() && l.Granted && l.Mode == txkv.Exclusive && string(l.Key) == "k")
				}
			}
			v, err := tx.Get([]byte("k"))
			if err != nil {
				return err
			}
			if len(attempts) == 1 {
				conformance.MustPut(t, db, "k", "other") // the first attempt will conflict
			}
			return tx.Put([]byte("k"), append(v, '+'))
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(attempts) != 2 || attempts[0] != txkv.Hybrid || attempts[1] != txkv.Pessimistic || !heldX {
			t.Fatalf("%v: attempts ran as %v (X held before the retry: %v), want Hybrid then Pessimistic holding X", s, attempts, heldX)
		}
		conformance.WantValue(t, db, "k", "other+")
		conformance.MustPut(t, db, "k", "0")
	}
}

// Close ends a pending lock wait with ErrClosed; a bad lock mode is an
// invalid option, not a panic.
func TestLockWaitClosedAndBadMode(t *testing.T) {
	dbs := openN(t, 2)
	t1 := begin(t, dbs[0], txkv.Pessimistic)
	if err := t1.LockKeys(txkv.Exclusive, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := t1.LockRange([]byte("a"), []byte("b"), txkv.LockMode(7)); !errors.Is(err, txkv.ErrInvalidOption) {
		t.Fatalf("LockRange with mode 7 = %v, want ErrInvalidOption", err)
	}
	t2 := begin(t, dbs[1], txkv.Pessimistic)
	x := async(func() error { return t2.LockKeys(txkv.Shared, []byte("k")) })
	waitQueued(t, dbs[1], t2)
	if err := dbs[1].Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-x:
		if !errors.Is(err, txkv.ErrClosed) {
			t.Fatalf("a wait ended by Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the wait")
	}
}

// Stats counts this handle's lock waits, timeouts, refusals and deadlocks.
func TestLockStats(t *testing.T) {
	db := open1(t)
	t1, t2 := begin(t, db, txkv.Pessimistic), begin(t, db, txkv.Pessimistic)
	if err := t1.LockKeys(txkv.Exclusive, []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := t2.LockKeys(txkv.Exclusive, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := t2.GetForUpdate([]byte("a"), txkv.NoWait()); !errors.Is(err, txkv.ErrLockNotAvailable) {
		t.Fatal(err)
	}
	if _, err := t2.GetForUpdate([]byte("a"), txkv.WaitTimeout(20*time.Millisecond)); !errors.Is(err, txkv.ErrLockTimeout) {
		t.Fatal(err)
	}
	x := async(func() error { return t1.LockKeys(txkv.Exclusive, []byte("b")) })
	waitQueued(t, db, t1)
	if err := t2.LockKeys(txkv.Exclusive, []byte("a")); !errors.Is(err, txkv.ErrDeadlock) {
		t.Fatalf("closing the cycle = %v", err)
	}
	wantDone(t, x, "T1 after the victim")
	s := db.Stats()
	if s.NotAvailable != 1 || s.LockTimeouts != 1 || s.Deadlocks != 1 || s.LockWaits < 2 || s.LockWaitTime <= 0 {
		t.Fatalf("Stats = %+v", s)
	}
}

// A failed optimistic commit is explained from its own Txn's Else reads:
// naming the conflicting key, a lock in the way or a lost lock costs no
// request beyond the commit Txn (explain.go).
func TestFailedCommitExplainedInOneRequest(t *testing.T) {
	db, kv := openCounted(t)
	conformance.MustPut(t, db, "x", "0")
	conformance.MustPut(t, db, "y", "0")
	conformance.MustPut(t, db, "warm", "0") // the records lease is granted before counting
	loser := begin(t, db, txkv.Optimistic)
	if _, err := loser.Get([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := loser.Put([]byte("y"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	conformance.MustPut(t, db, "x", "changed")
	before := kv.calls.Load()
	var ce *txkv.ConflictError
	if err := loser.Commit(); !errors.As(err, &ce) || string(ce.Key) != "x" {
		t.Fatalf("Commit = %v, want a *ConflictError naming x", err)
	}
	if got := kv.calls.Load() - before; got != 1 {
		t.Fatalf("a failed commit, explained: %d requests, want 1 (the commit Txn)", got)
	}
}

// An optimistic retry reads at the revision where the commit before it
// failed, and what that commit's Txn read of the compared keys costs it no
// request: it sees the version it lost to at once (no doomed retry).
func TestOptimisticRetryReadsWhatTheFailedCommitSaw(t *testing.T) {
	db, kv := openCounted(t)
	conformance.MustPut(t, db, "x", "0")
	attempts, retryRequests := 0, int64(-1)
	err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Optimistic}, func(tx *txkv.Tx) error {
		attempts++
		before := kv.calls.Load()
		v, err := tx.Get([]byte("x"))
		if err != nil {
			return err
		}
		switch attempts {
		case 1:
			conformance.MustPut(t, db, "x", "other") // a writer commits between the read and the commit
		case 2:
			retryRequests = kv.calls.Load() - before
			if string(v) != "other" {
				t.Errorf("the retry read %q, want the version it lost to", v)
			}
		}
		return tx.Put([]byte("x"), append(v, '!'))
	})
	if err != nil || attempts != 2 {
		t.Fatalf("Update = %v after %d attempts, want nil after 2", err, attempts)
	}
	if retryRequests != 0 {
		t.Errorf("the retry's read of x took %d requests, want 0", retryRequests)
	}
	if v, err := db.Get(bg, []byte("x")); err != nil || string(v) != "other!" {
		t.Fatalf("x = %q, %v", v, err)
	}
}
