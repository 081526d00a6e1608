package txkv_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/txkv/txkv"
)

// heldLog is a file DB whose log batches can be held open inside their bbolt transaction
// (the BeforeLogCommit seam): a commit made while held is installed and visible, not durable.
type heldLog struct {
	db       *txkv.DB
	path     string
	holding  atomic.Bool
	held     chan struct{} // closed by release
	released atomic.Bool   // set just before release: "durable" may be observed from now on
	fail     error         // the held batch fails with this (nil: it commits)
}

func openHeldLog(t *testing.T, fail error) *heldLog {
	h := &heldLog{held: make(chan struct{}), fail: fail}
	db, path := openFile(t, &txkv.Options{BeforeLogCommit: func() error {
		if !h.holding.Load() {
			return nil
		}
		<-h.held
		return h.fail
	}})
	h.db, h.path = db, path
	return h
}

func (h *heldLog) release() {
	h.released.Store(true)
	close(h.held)
}

// visibleNotDurable waits until a commit is installed but its batch not yet durable.
func (h *heldLog) visibleNotDurable(t *testing.T) {
	t.Helper()
	waitFor(t, "a commit visible but not durable", func() bool {
		s := h.db.Stats()
		return s.ReadTS > s.DurableTS
	})
}

// A commit's writes are visible as soon as they are installed — before its batch is durable —
// but nothing reports them until they are durable: DB.Get, a View and Watch all wait; a read of
// a key whose newest version is durable does not.
func TestReadersWaitForDurability(t *testing.T) {
	h := openHeldLog(t, nil)
	db := h.db
	mustPut(t, db, "a", "1")
	mustPut(t, db, "other", "x")
	events := make(chan string, 1)
	watchCtx, stopWatch := context.WithCancel(bg)
	defer stopWatch()
	stream := db.Watch(watchCtx, []byte("a"), 0) // from the next commit on
	go func() {
		for ev, err := range stream {
			if err != nil {
				return
			}
			if !h.released.Load() {
				events <- "delivered before durable"
				return
			}
			events <- string(ev.Value)
			return
		}
	}()

	h.holding.Store(true)
	committed := make(chan error, 1)
	go func() { committed <- db.Put(bg, []byte("a"), []byte("2")) }()
	h.visibleNotDurable(t)

	got := make(chan string, 2)
	go func() { got <- readAfterDurable(h, func() (string, error) { return getString2(db, "a") }) }()
	go func() {
		got <- readAfterDurable(h, func() (string, error) {
			var v []byte
			err := db.View(bg, func(tx *txkv.Tx) error {
				var err error
				v, err = tx.Get([]byte("a"))
				return err
			})
			return string(v), err
		})
	}()
	waitFor(t, "both readers waiting for durability", func() bool { return db.Stats().DurabilityWaits >= 2 })
	// A key whose newest version is durable: read at once, while the batch is still held.
	if v, err := db.Get(bg, []byte("other")); err != nil || string(v) != "x" {
		t.Fatalf("Get of a durable key while a batch is held: %q, %v", v, err)
	}
	if n := db.Stats().DurabilityWaits; n != 2 {
		t.Fatalf("DurabilityWaits %d after reading a durable key, want 2", n)
	}
	h.release()
	if err := recv(t, committed, "the commit"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if v := recv(t, got, "a read"); v != "2" {
			t.Fatalf("read of a: %s", v)
		}
	}
	if ev := recv(t, events, "the watch event"); ev != "2" {
		t.Fatalf("watch: %s", ev)
	}
}

// readAfterDurable runs read and reports its value, or what went wrong: it returned before
// the batch holding the version it read was released.
func readAfterDurable(h *heldLog, read func() (string, error)) string {
	v, err := read()
	switch {
	case err != nil:
		return "error: " + err.Error()
	case !h.released.Load():
		return fmt.Sprintf("%q returned before it was durable", v)
	}
	return v
}

func getString2(db *txkv.DB, key string) (string, error) {
	v, err := db.Get(bg, []byte(key))
	return string(v), err
}

// A read-write transaction that read a version that is not durable yet commits in the same
// batch or a later one: if that version's batch fails, so does the dependent's commit — it is
// never acknowledged.
func TestDependentOfAFailedBatchFails(t *testing.T) {
	injected := errors.New("injected fsync failure")
	h := openHeldLog(t, injected)
	db := h.db
	mustPut(t, db, "a", "1")
	h.holding.Store(true)
	first := make(chan error, 1)
	go func() { first <- db.Put(bg, []byte("a"), []byte("2")) }()
	h.visibleNotDurable(t)
	dependent := make(chan error, 1)
	go func() {
		dependent <- db.Update(bg, nil, func(tx *txkv.Tx) error {
			v, err := tx.Get([]byte("a"))
			if err != nil {
				return err
			}
			if string(v) != "2" {
				return fmt.Errorf("the dependent read %q, want the installed 2", v)
			}
			return tx.Put([]byte("b"), v)
		})
	}()
	waitFor(t, "the dependent's record queued behind the held batch", func() bool { return db.Stats().WALQueued == 1 })
	h.release()
	for _, ch := range []chan error{first, dependent} {
		if err := recv(t, ch, "a commit"); !errors.Is(err, txkv.ErrLogFailed) {
			t.Fatalf("commit: %v, want ErrLogFailed", err)
		}
	}
	if _, err := db.Get(bg, []byte("b")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Fatalf("Get of the dependent's write: %v, want ErrLogFailed", err)
	}
	_ = db.Close() // may report the failure
	db = openAt(t, h.path, nil)
	defer closeQuietly(t, db)
	wantValue(t, db, "a", "1")
	wantAbsent(t, db, "b")
}
