package txn

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// TestMeanTxTime: durations are sampled (one transaction in timedEvery), and
// the sample still reports what every transaction took — here at least a
// millisecond each, measured by the clock, not arranged by sleeping.
func TestMeanTxTime(t *testing.T) {
	db := openEngine(t)
	ctx := context.Background()
	for range 2 * timedEvery {
		tx, err := db.Begin(ctx, &TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		for t0 := time.Now(); time.Since(t0) < time.Millisecond; {
			runtime.Gosched()
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	st := db.Stats()
	if st.MeanTxTime < time.Millisecond || st.MeanTxTime > time.Minute {
		t.Fatalf("MeanTxTime = %v, want at least 1ms", st.MeanTxTime)
	}
	if st.Commits != 2*timedEvery {
		t.Fatalf("Commits = %d, want %d", st.Commits, 2*timedEvery)
	}
}

// TestTxSize keeps a transaction within the 288-byte size class: a View
// allocates one Tx and little else, so its size is most of what a read-only
// transaction costs the garbage collector. (64-bit platforms.)
func TestTxSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are for 64-bit platforms")
	}
	if n := unsafe.Sizeof(Tx{}); n > 288 {
		t.Fatalf("Tx is %d bytes, over the 288-byte size class", n)
	}
}

// Each strategy's conflicts are counted apart from its other aborts.
func TestStrategyStatsCountConflicts(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	ctx := context.Background()
	tx, err := db.Begin(ctx, &TxOptions{Strategy: Optimistic})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := db.Put(ctx, []byte("k"), []byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put([]byte("k"), []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, ErrConflict) {
		t.Fatalf("Commit = %v, want a conflict", err)
	}
	rb, err := db.Begin(ctx, &TxOptions{Strategy: Optimistic})
	if err != nil {
		t.Fatal(err)
	}
	_ = rb.Rollback() // an abort, not a conflict
	if got := db.Stats().ByStrategy["optimistic"]; got.Aborts != 2 || got.Conflicts != 1 {
		t.Fatalf("optimistic: %+v, want 2 aborts of which 1 conflict", got)
	}
}
