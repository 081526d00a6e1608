package txkv_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// One rule for ranges: [start, end) with start at or after end holds no key. Scan reads
// nothing, ScanForUpdate claims nothing, LockRange locks nothing — none of them errs.
func TestEmptyRangesAreEmptyEverywhere(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "a", "1")
	mustPut(t, db, "b", "2")
	tx := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	defer func() { _ = tx.Rollback() }()
	for _, r := range [][2]string{{"b", "a"}, {"b", "b"}} {
		start, end := []byte(r[0]), []byte(r[1])
		if got := scanAll(t, tx, start, end); len(got) != 0 {
			t.Errorf("Scan(%q, %q) = %v, want nothing", start, end, got)
		}
		kvs, err := tx.ScanForUpdate(start, end, 0)
		if err != nil || len(kvs) != 0 {
			t.Errorf("ScanForUpdate(%q, %q) = %v, %v; want nothing", start, end, kvs, err)
		}
		if err := tx.LockRange(start, end, txkv.Exclusive); err != nil {
			t.Errorf("LockRange(%q, %q) = %v, want nil (nothing to lock)", start, end, err)
		}
	}
	for _, l := range db.Locks() {
		if l.Range {
			t.Fatalf("an empty range was locked: %+v", l)
		}
	}
}

// A read-only transaction refuses writes and locks alike with ErrReadOnly, saying which it
// was asked for: a lock is not a write.
func TestReadOnlyRefusalsSayWhat(t *testing.T) {
	db := openMem(t, nil)
	err := db.View(bg, func(tx *txkv.Tx) error {
		for _, c := range []struct {
			op   func() error
			want string
		}{
			{func() error { return tx.Put([]byte("k"), []byte("v")) }, "Put writes"},
			{func() error { _, err := tx.GetForUpdate([]byte("k")); return err }, "GetForUpdate takes a lock"},
			{func() error { _, err := tx.GetForShare([]byte("k")); return err }, "GetForShare takes a lock"},
			{func() error { _, err := tx.ScanForUpdate(nil, nil, 1); return err }, "ScanForUpdate takes a lock"},
			{func() error { return tx.LockRange(nil, nil, txkv.Shared) }, "LockRange takes a lock"},
		} {
			err := c.op()
			if !errors.Is(err, txkv.ErrReadOnly) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%v: want ErrReadOnly saying %q", err, c.want)
			}
			if strings.Contains(err.Error(), "takes a lock") && strings.Contains(err.Error(), "write") {
				t.Errorf("a lock refusal calls it a write: %v", err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// DeadlockPeriodic with a LockTimeout at or below the sweep interval would turn every
// deadlock into a lock timeout (not retried) before the sweep finds it: Open refuses it,
// naming both values.
func TestPeriodicDetectionNeedsTimeoutAboveInterval(t *testing.T) {
	o := txkv.DefaultOptions()
	o.DeadlockDetection = txkv.DeadlockPeriodic
	o.DeadlockInterval = time.Second
	o.LockTimeout = time.Second
	_, err := txkv.Open("", o)
	if !errors.Is(err, txkv.ErrInvalidOption) || !strings.Contains(err.Error(), "LockTimeout 1s") ||
		!strings.Contains(err.Error(), "DeadlockInterval 1s") {
		t.Fatalf("Open = %v, want ErrInvalidOption naming LockTimeout 1s and DeadlockInterval 1s", err)
	}
	o.LockTimeout = 2 * time.Second
	db, err := txkv.Open("", o)
	if err != nil {
		t.Fatalf("LockTimeout above the interval: %v", err)
	}
	_ = db.Close()
}

// Advise takes the guide's six answers; one out of range is brought into range and the
// first reason says which field and how — and Workload.Validate reports it as an error.
func TestAdviseValidatesItsInput(t *testing.T) {
	w := txkv.Workload{ConflictRate: 5, ReadWriteRatio: 2}
	a := txkv.Advise(w)
	if len(a.Reasons) == 0 || !strings.Contains(a.Reasons[0], "ConflictRate 5 is outside [0, 1]") {
		t.Fatalf("Advise(ConflictRate: 5) reasons %q: want the first to name ConflictRate", a.Reasons)
	}
	if a.Strategy != txkv.Pessimistic {
		t.Fatalf("Advise(ConflictRate: 5 → 1) = %v, want pessimistic", a.Strategy)
	}
	if err := w.Validate(); !errors.Is(err, txkv.ErrInvalidOption) || !strings.Contains(err.Error(), "ConflictRate") {
		t.Fatalf("Validate = %v", err)
	}
	if err := (txkv.Workload{ConflictRate: 0.1, TxDuration: time.Millisecond}).Validate(); err != nil {
		t.Fatalf("a valid workload: %v", err)
	}
}

// After one single-key write, the mean transaction time is measured (the first
// transactions of a DB are always timed), and histogram buckets print readably.
func TestStatsReadable(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "v")
	s := db.Stats()
	if s.MeanTxTime <= 0 {
		t.Fatalf("MeanTxTime after a Put = %v", s.MeanTxTime)
	}
	last := s.LockWaitHistogram[len(s.LockWaitHistogram)-1]
	if got := last.String(); got != "more: 0" {
		t.Fatalf("last bucket prints %q", got)
	}
	if got := s.LockWaitHistogram[0].String(); !strings.HasPrefix(got, "≤") {
		t.Fatalf("first bucket prints %q", got)
	}
}

// HotKeys names the keys transactions fight over: conflicts from optimistic transactions,
// lock waits from pessimistic ones, and deadlocks, each counted on its key.
func TestHotKeysNamesTheContendedKeys(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "counter", "0")
	mustPut(t, db, "quiet", "0")
	// A conflict on counter: read it, let another transaction commit it, commit.
	tx := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Optimistic})
	if _, err := tx.Get([]byte("counter")); err != nil {
		t.Fatal(err)
	}
	mustPut(t, db, "counter", "1")
	if err := tx.Put([]byte("counter"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, txkv.ErrConflict) {
		t.Fatalf("commit = %v, want a conflict", err)
	}
	// A lock wait on counter.
	holder := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	if _, err := holder.GetForUpdate([]byte("counter")); err != nil {
		t.Fatal(err)
	}
	waiter := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	done := make(chan error, 1)
	go func() { _, err := waiter.GetForUpdate([]byte("counter")); done <- err }()
	waitFor(t, "the waiter to queue", func() bool { return isWaiting(db, waiter.ID()) })
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, done, "the waiter"); err != nil {
		t.Fatal(err)
	}
	_ = waiter.Rollback()
	top := db.HotKeys(10)
	if len(top) != 1 || string(top[0].Key) != "counter" || top[0].Conflicts != 1 || top[0].LockWaits != 1 {
		t.Fatalf("HotKeys = %+v, want counter with 1 conflict and 1 lock wait, nothing else", top)
	}
}
