package etcdkv_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
	"github.com/txkv/txkv/internal/conformance"
)

// Lock tests over two handles of one database (two sessions, two leases:
// what two processes see), unless a test needs one.

func begin(t *testing.T, db *txkv.DB, s txkv.Strategy) *txkv.Tx {
	t.Helper()
	tx, err := db.Begin(bg, &txkv.TxOptions{Strategy: s, LockTimeout: txkv.Forever})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	t.Cleanup(func() { tx.Rollback() })
	return tx
}

// waitQueued waits until tx waits for a lock (its handle's Locks).
func waitQueued(t *testing.T, db *txkv.DB, tx *txkv.Tx) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !conformance.IsWaiting(db, tx.ID()) {
		if time.Now().After(deadline) {
			t.Fatalf("tx %d never waited for a lock", tx.ID())
		}
		time.Sleep(time.Millisecond)
	}
}

// async runs f in a goroutine; the channel yields its error.
func async(f func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	return ch
}

func wantPending(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned %v, want it still waiting", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

func wantDone(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waiting", what)
	}
}

func wantLockErr(t *testing.T, err, sentinel error) *txkv.LockError {
	t.Helper()
	var le *txkv.LockError
	if !errors.Is(err, sentinel) || !errors.As(err, &le) {
		t.Fatalf("err = %v, want a *LockError matching %v", err, sentinel)
	}
	return le
}

func commit(t *testing.T, tx *txkv.Tx) {
	t.Helper()
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

// countEntries counts the lock entries (point and range) of db's prefix.
func countEntries(t *testing.T, cli *clientv3.Client, prefix string) int {
	t.Helper()
	n := 0
	for _, sp := range []string{"l/", "r/"} {
		resp, err := cli.Get(bg, prefix+sp, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		n += int(resp.Count)
	}
	return n
}

// S is shared with S, not with X; NOWAIT refuses at once and names the
// holders; after the holders end, X is free.
func TestLockSharedExclusive(t *testing.T) {
	dbs := openN(t, 2)
	conformance.MustPut(t, dbs[0], "k", "v")
	t1, t2 := begin(t, dbs[0], txkv.Optimistic), begin(t, dbs[1], txkv.Optimistic)
	if v, err := t1.GetForShare([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("T1 GetForShare = %q, %v", v, err)
	}
	if _, err := t2.GetForShare([]byte("k"), txkv.NoWait()); err != nil {
		t.Fatalf("T2 GetForShare beside T1's S: %v", err)
	}
	t3 := begin(t, dbs[1], txkv.Optimistic)
	_, err := t3.GetForUpdate([]byte("k"), txkv.NoWait())
	le := wantLockErr(t, err, txkv.ErrLockNotAvailable)
	if len(le.Holders) != 2 {
		t.Fatalf("holders %v, want T1 and T2", le.Holders)
	}
	commit(t, t1)
	commit(t, t2)
	if _, err := t3.GetForUpdate([]byte("k"), txkv.NoWait()); err != nil {
		t.Fatalf("GetForUpdate after the S holders ended: %v", err)
	}
	t4 := begin(t, dbs[0], txkv.Optimistic)
	_, err = t4.GetForShare([]byte("k"), txkv.NoWait())
	wantLockErr(t, err, txkv.ErrLockNotAvailable)
}

// FIFO: an S request queues behind an earlier X waiter (no barging), and
// grants follow the queue.
func TestLockFIFO(t *testing.T) {
	dbs := openN(t, 2)
	conformance.MustPut(t, dbs[0], "k", "v")
	t1 := begin(t, dbs[0], txkv.Pessimistic)
	if _, err := t1.GetForShare([]byte("k")); err != nil {
		t.Fatal(err)
	}
	t2 := begin(t, dbs[1], txkv.Pessimistic)
	x2 := async(func() error { _, err := t2.GetForUpdate([]byte("k")); return err })
	waitQueued(t, dbs[1], t2)
	t3 := begin(t, dbs[0], txkv.Pessimistic)
	_, err := t3.GetForShare([]byte("k"), txkv.NoWait())
	if le := wantLockErr(t, err, txkv.ErrLockNotAvailable); len(le.Queued) != 1 {
		t.Fatalf("S NOWAIT behind a queued X: queued %v, want the X waiter", le.Queued)
	}
	s3 := async(func() error { _, err := t3.GetForShare([]byte("k")); return err })
	waitQueued(t, dbs[0], t3)
	commit(t, t1)
	wantDone(t, x2, "T2's X after T1 ended")
	wantPending(t, s3, "T3's S behind T2's X")
	commit(t, t2)
	wantDone(t, s3, "T3's S after T2 ended")
}

// A holder's S->X upgrade goes ahead of an X queued behind its S; with a
// second S holder it waits for that one only.
func TestLockUpgrade(t *testing.T) {
	dbs := openN(t, 2)
	conformance.MustPut(t, dbs[0], "k", "v")
	t1 := begin(t, dbs[0], txkv.Pessimistic)
	if _, err := t1.GetForShare([]byte("k")); err != nil {
		t.Fatal(err)
	}
	t2 := begin(t, dbs[1], txkv.Pessimistic)
	x2 := async(func() error { _, err := t2.GetForUpdate([]byte("k")); return err })
	waitQueued(t, dbs[1], t2)
	if _, err := t1.GetForUpdate([]byte("k"), txkv.WaitTimeout(2*time.Second)); err != nil {
		t.Fatalf("T1's upgrade ahead of T2: %v", err)
	}
	wantPending(t, x2, "T2's X while T1 holds X")
	commit(t, t1)
	wantDone(t, x2, "T2's X after T1")
	commit(t, t2)

	t3, t4 := begin(t, dbs[0], txkv.Pessimistic), begin(t, dbs[1], txkv.Pessimistic)
	for _, tx := range []*txkv.Tx{t3, t4} {
		if _, err := tx.GetForShare([]byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	up := async(func() error { return t3.Put([]byte("k"), []byte("3")) })
	waitQueued(t, dbs[0], t3)
	wantPending(t, up, "T3's upgrade beside T4's S")
	commit(t, t4)
	wantDone(t, up, "T3's upgrade after T4 ended")
	commit(t, t3)
	conformance.WantValue(t, dbs[0], "k", "3")
}

// WaitTimeout(0) fails at once with ErrLockTimeout, never queued; a short
// timeout fails after it and withdraws its entry; the default comes from
// Options.LockTimeout.
func TestLockTimeouts(t *testing.T) {
	cli := newClient(t, 0)
	prefix := testPrefix(t)
	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: prefix, LockTimeout: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	conformance.MustPut(t, db, "k", "v")
	t1 := begin(t, db, txkv.Pessimistic)
	if _, err := t1.GetForUpdate([]byte("k")); err != nil {
		t.Fatal(err)
	}
	t2 := begin(t, db, txkv.Pessimistic)
	start := time.Now()
	_, err = t2.GetForUpdate([]byte("k"), txkv.WaitTimeout(0))
	if le := wantLockErr(t, err, txkv.ErrLockTimeout); le.Timeout != 0 || time.Since(start) > time.Second {
		t.Fatalf("WaitTimeout(0): %v after %v, want at once, Timeout 0", err, time.Since(start))
	}
	start = time.Now()
	_, err = t2.GetForUpdate([]byte("k"), txkv.WaitTimeout(200*time.Millisecond))
	if le := wantLockErr(t, err, txkv.ErrLockTimeout); le.Timeout != 200*time.Millisecond ||
		time.Since(start) < 200*time.Millisecond || !slices.Contains(le.Holders, t1.ID()) {
		t.Fatalf("WaitTimeout(200ms): %+v after %v", le, time.Since(start))
	}
	if n := countEntries(t, cli, prefix); n != 1 {
		t.Fatalf("%d lock entries after the timeout, want T1's only", n)
	}
	// The DB's default (150 ms) for a plain write, where TxOptions says 0.
	t3, err := db.Begin(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	if err != nil {
		t.Fatal(err)
	}
	defer t3.Rollback()
	start = time.Now()
	if err := t3.Put([]byte("k"), []byte("3")); !errors.Is(err, txkv.ErrLockTimeout) ||
		time.Since(start) < 150*time.Millisecond || time.Since(start) > 3*time.Second {
		t.Fatalf("Put under the DB's 150ms default = %v after %v", err, time.Since(start))
	}
	// Forever waits until the holder ends.
	x := async(func() error { _, err := t2.GetForUpdate([]byte("k"), txkv.WaitTimeout(txkv.Forever)); return err })
	wantPending(t, x, "a Forever wait")
	commit(t, t1)
	wantDone(t, x, "a Forever wait after the holder ended")
}

// Cancelling the ctx of a waiting transaction ends its wait with the
// ctx's error and withdraws its entry.
func TestLockCtxCancel(t *testing.T) {
	db, cli, prefix := open1Raw(t)
	conformance.MustPut(t, db, "k", "v")
	t1 := begin(t, db, txkv.Pessimistic)
	if _, err := t1.GetForUpdate([]byte("k")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	t2, err := db.Begin(ctx, &txkv.TxOptions{Strategy: txkv.Pessimistic, LockTimeout: txkv.Forever})
	if err != nil {
		t.Fatal(err)
	}
	defer t2.Rollback()
	x := async(func() error { _, err := t2.GetForUpdate([]byte("k")); return err })
	waitQueued(t, db, t2)
	cancel()
	select {
	case err := <-x:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled wait = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end with its ctx")
	}
	if n := countEntries(t, cli, prefix); n != 1 {
		t.Fatalf("%d lock entries after the cancel, want T1's only", n)
	}
}

// Deadlocks among one handle's transactions are found: the requester that
// closes the cycle is the victim (retryable), the other gets its lock.
func TestLockDeadlockOneHandle(t *testing.T) {
	db := open1(t)
	t1, t2 := begin(t, db, txkv.Pessimistic), begin(t, db, txkv.Pessimistic)
	if err := t1.Put([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := t2.Put([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	x1 := async(func() error { return t1.Put([]byte("b"), []byte("1")) })
	waitQueued(t, db, t1)
	err := t2.Put([]byte("a"), []byte("2"))
	var de *txkv.DeadlockError
	if !errors.As(err, &de) || de.Victim != t2.ID() || !txkv.IsRetryable(err) || len(de.Cycle) != 2 {
		t.Fatalf("T2 closing the cycle = %v, want a *DeadlockError naming it", err)
	}
	wantDone(t, x1, "T1 after the victim released")
	commit(t, t1)
	if db.LastDeadlock() == nil {
		t.Fatal("LastDeadlock is nil")
	}
}

// Locks lists held and waiting requests of the handle.
func TestLocksIntrospection(t *testing.T) {
	db := open1(t)
	t1, t2 := begin(t, db, txkv.Pessimistic), begin(t, db, txkv.Pessimistic)
	if err := t1.LockRange([]byte("a"), []byte("m"), txkv.Exclusive); err != nil {
		t.Fatal(err)
	}
	x := async(func() error { _, err := t2.GetForShare([]byte("c")); return absentOK(err) })
	waitQueued(t, db, t2)
	var held, waiting int
	for _, l := range db.Locks() {
		switch {
		case l.Granted && l.Range && l.TxID == t1.ID():
			held++
		case !l.Granted && l.TxID == t2.ID() && string(l.Key) == "c":
			waiting++
		}
	}
	if held != 1 || waiting != 1 {
		t.Fatalf("Locks() = %+v", db.Locks())
	}
	commit(t, t1)
	wantDone(t, x, "T2 after the range holder")
}

func TestSessionTTLValidated(t *testing.T) {
	cli := newClient(t, 0)
	for _, ttl := range []time.Duration{-time.Second, 500 * time.Millisecond, 48 * time.Hour} {
		if _, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: testPrefix(t), SessionTTL: ttl}); !errors.Is(err, txkv.ErrInvalidOption) {
			t.Errorf("SessionTTL %v: %v, want ErrInvalidOption", ttl, err)
		}
	}
}

// absentOK maps ErrNotFound (a locked read of an absent key) to nil.
func absentOK(err error) error {
	if errors.Is(err, txkv.ErrNotFound) {
		return nil
	}
	return err
}
