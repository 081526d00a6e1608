package txkv_test

import (
	"errors"
	"testing"

	"github.com/txkv/txkv"
)

// WaitForGraph reports the edge of a blocked transaction with its target
// and mode, and forgets it once the wait ends.
func TestWaitForGraph(t *testing.T) {
	db := openMem(t, nil)
	opts := &txkv.TxOptions{Strategy: txkv.Pessimistic}
	holder := mustBegin(t, db, opts)
	defer holder.Rollback()
	if _, err := holder.GetForUpdate([]byte("a<b>")); err != nil && !errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("GetForUpdate: %v", err)
	}
	waiter := mustBegin(t, db, opts)
	defer waiter.Rollback()
	done := make(chan error, 1)
	go func() {
		_, err := waiter.GetForShare([]byte("a<b>"))
		done <- err
	}()
	waitFor(t, "the waiter to queue", func() bool { return isWaiting(db, waiter.ID()) })
	edges := db.WaitForGraph()
	if len(edges) != 1 {
		t.Fatalf("WaitForGraph = %+v, want one edge", edges)
	}
	e := edges[0]
	if e.Waiter != waiter.ID() || e.Holder != holder.ID() || e.Soft || e.Range ||
		string(e.Key) != "a<b>" || e.Mode != txkv.Shared || e.Since.IsZero() {
		t.Fatalf("edge = %+v, want txn %d waits shared on \"a<b>\" for txn %d", e, waiter.ID(), holder.ID())
	}
	if err := holder.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if err := recv(t, done, "the waiter's grant"); err != nil && !errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("GetForShare: %v", err)
	}
	if edges := db.WaitForGraph(); len(edges) != 0 {
		t.Fatalf("WaitForGraph after the release = %+v, want none", edges)
	}
}
