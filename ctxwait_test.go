package txkv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Context cancellation while waiting for a lock (architecture §2: "cancel ends
// lock waits with ctx.Err() and rolls the transaction back"; §4: "timeout
// or cancellation removes the waiter and re-examines the queue behind it").
// errors_test.go's TestCancelEndsLockWait covers one GetForUpdate wait;
// these cover every kind of wait a transaction can be in — explicit point,
// range and scan locks, LockKeys, a strict-2PL write and read, and the
// commit protocol's write-set locks — for both cancel and deadline, and
// check that nothing of the transaction is left: not the wait, not the
// locks it held before it waited, not a wait-for graph node; and that the
// queue behind a cancelled waiter moves on.
//
// The waiter's lock timeout is an hour, so a wait that ends at all was
// ended by its context: that is what "promptly" means here, with no timed
// assertion.

// waitKind is one way a transaction can wait for the key "r/2", which the
// holder locks exclusively. Before waiting, the waiter locks "mine".
type waitKind struct {
	name string
	mode mode
	wait func(tx *txkv.Tx) error
}

var waitKinds = []waitKind{
	{"GetForShare", optimisticSerializable, func(tx *txkv.Tx) error {
		_, err := tx.GetForShare([]byte("r/2"))
		return err
	}},
	{"GetForUpdate-snapshot", optimisticSnapshot, func(tx *txkv.Tx) error {
		_, err := tx.GetForUpdate([]byte("r/2"))
		return err
	}},
	{"LockRange", hybridSerializable, func(tx *txkv.Tx) error {
		return tx.LockRange([]byte("r/"), []byte("r0"), txkv.Shared)
	}},
	{"ScanForUpdate", adaptiveSerializable, func(tx *txkv.Tx) error {
		_, err := tx.ScanForUpdate([]byte("r/"), []byte("r0"), 0)
		return err
	}},
	{"LockKeys", pessimisticSnapshot, func(tx *txkv.Tx) error {
		return tx.LockKeys(txkv.Exclusive, []byte("r/3"), []byte("r/2"), []byte("r/1"))
	}},
	{"strict-2PL-Put", pessimisticSerializable, func(tx *txkv.Tx) error {
		return tx.Put([]byte("r/2"), []byte("waiter"))
	}},
	{"strict-2PL-Get", pessimisticSerializable, func(tx *txkv.Tx) error {
		_, err := tx.Get([]byte("r/2"))
		return err
	}},
	{"strict-2PL-Scan", pessimisticSerializable, func(tx *txkv.Tx) error {
		return tx.Scan([]byte("r/"), []byte("r0"), func(_, _ []byte) error { return nil })
	}},
	{"optimistic-Commit", optimisticSerializable, func(tx *txkv.Tx) error {
		if err := tx.Put([]byte("r/2"), []byte("waiter")); err != nil {
			return err
		}
		return tx.Commit()
	}},
	{"snapshot-Commit", adaptiveSnapshot, func(tx *txkv.Tx) error {
		if err := tx.Put([]byte("r/2"), []byte("waiter")); err != nil {
			return err
		}
		return tx.Commit()
	}},
}

func TestCancelEndsEveryKindOfWait(t *testing.T) {
	for _, k := range waitKinds {
		t.Run(k.name+"/cancel", func(t *testing.T) { testCancelledWait(t, k, false) })
		t.Run(k.name+"/deadline", func(t *testing.T) {
			t.Parallel() // an idle 100ms wait each
			testCancelledWait(t, k, true)
		})
	}
}

func testCancelledWait(t *testing.T, k waitKind, deadline bool) {
	db := openMem(t, &txkv.Options{LockTimeout: time.Hour})
	for _, key := range []string{"r/1", "r/2", "r/3"} {
		mustPut(t, db, key, "committed")
	}
	holder := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "holder"})
	defer func() { _ = holder.Rollback() }()
	if _, err := holder.GetForUpdate([]byte("r/2")); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(bg)
	want := context.Canceled
	if deadline {
		// Long enough to queue first (Stats().LockWaits checks it did); the
		// waiter's lock timeout is an hour.
		ctx, cancel = context.WithTimeout(bg, 100*time.Millisecond)
		want = context.DeadlineExceeded
	}
	defer cancel()
	opts := k.mode.TxOptions()
	opts.Label = "waiter"
	waiter, err := db.Begin(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := waiter.GetForUpdate([]byte("mine")); err != nil && !errors.Is(err, txkv.ErrNotFound) {
		t.Fatal(err)
	}
	if !holds(db, waiter.ID(), "mine", txkv.Exclusive) {
		t.Fatalf("the waiter does not hold mine: %v", lockTable(db))
	}
	before := db.Stats()
	errc := make(chan error, 1)
	go func() { errc <- k.wait(waiter) }()
	if !deadline {
		waitFor(t, "the waiter to queue", func() bool { return isWaiting(db, waiter.ID()) })
		cancel()
	}
	if err := recv(t, errc, "the wait to end"); !errors.Is(err, want) {
		t.Fatalf("%s ended by its ctx = %v, want %v", k.name, err, want)
	}
	// No trace: not the wait, not "mine", not a graph node.
	wantNoTrace(t, db, waiter.ID())
	wantLocks(t, db, `"r/2": holder X granted`)
	if _, err := waiter.Get([]byte("r/1")); !errors.Is(err, want) {
		t.Fatalf("the waiter's next call = %v, want %v (rolled back)", err, want)
	}
	after := db.Stats()
	if after.LockWaits != before.LockWaits+1 || after.LockTimeouts != before.LockTimeouts ||
		after.AbortsByReason["cancelled"] != before.AbortsByReason["cancelled"]+1 {
		t.Fatalf("Stats: lock waits %d→%d (want +1), timeouts %d→%d (want +0), cancelled aborts %d→%d (want +1)",
			before.LockWaits, after.LockWaits, before.LockTimeouts, after.LockTimeouts,
			before.AbortsByReason["cancelled"], after.AbortsByReason["cancelled"])
	}
	// The holder is unaffected; the waiter wrote nothing.
	if err := holder.Put([]byte("r/2"), []byte("holder")); err != nil {
		t.Fatal(err)
	}
	if err := holder.Commit(); err != nil {
		t.Fatalf("holder Commit: %v", err)
	}
	wantValue(t, db, "r/2", "holder")
	wantAbsent(t, db, "mine")
	wantLocks(t, db)
}

// Cancelling a waiter re-examines the queue behind it: T1 holds S(k), T2
// waits for X (point or range), T3's S(k) queues behind T2 (no barging past
// an X waiter). Cancel T2 and T3 is granted at once, while T1 still holds.
func TestCancelledWaiterUnblocksTheQueueBehind(t *testing.T) {
	for _, tc := range []struct {
		name string
		wait func(tx *txkv.Tx) error
	}{
		{"point", func(tx *txkv.Tx) error { _, err := tx.GetForUpdate([]byte("k")); return err }},
		{"range", func(tx *txkv.Tx) error { return tx.LockRange([]byte("a"), []byte("z"), txkv.Exclusive) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openMem(t, &txkv.Options{LockTimeout: time.Hour})
			t1 := mustBegin(t, db, &txkv.TxOptions{Label: "T1"})
			defer func() { _ = t1.Rollback() }()
			if _, err := t1.GetForShare([]byte("k")); !errors.Is(err, txkv.ErrNotFound) {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			t2, err := db.Begin(ctx, &txkv.TxOptions{Label: "T2"})
			if err != nil {
				t.Fatal(err)
			}
			err2 := make(chan error, 1)
			go func() { err2 <- tc.wait(t2) }()
			waitFor(t, "T2 to queue", func() bool { return isWaiting(db, t2.ID()) })
			t3 := mustBegin(t, db, &txkv.TxOptions{Label: "T3"})
			defer func() { _ = t3.Rollback() }()
			err3 := make(chan error, 1)
			go func() { _, err := t3.GetForShare([]byte("k")); err3 <- err }()
			waitFor(t, "T3 to queue behind T2", func() bool { return isWaiting(db, t3.ID()) })
			t.Logf("before the cancel: %v", lockTable(db))
			cancel()
			if err := recv(t, err2, "T2's cancelled wait"); !errors.Is(err, context.Canceled) {
				t.Fatalf("T2 = %v, want context.Canceled", err)
			}
			if err := recv(t, err3, "T3's grant"); !errors.Is(err, txkv.ErrNotFound) {
				t.Fatalf("T3 S(k) after T2's cancel = %v, want the lock (and ErrNotFound: k is absent)", err)
			}
			wantLocks(t, db, `"k": T1 S granted`, `"k": T3 S granted`)
		})
	}
}
