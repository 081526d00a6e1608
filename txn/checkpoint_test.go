package txn

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

const testMemtable = 64 << 10

// openCheckpointDB opens a durable database with a 64 KiB memtable and a log
// limit that never triggers, closed at the end of the test.
func openCheckpointDB(t *testing.T) *DB {
	t.Helper()
	c := defaultConfig(t)
	c.Sync = SyncNone
	c.MemtableBytes = testMemtable
	c.CheckpointBytes = 1 << 40
	db, err := Open(filepath.Join(t.TempDir(), "db"), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// put commits one transaction writing n 1 KiB values under prefix.
func put(db *DB, prefix string, n int) error {
	val := make([]byte, 1<<10)
	return db.Update(context.Background(), nil, func(tx *Tx) error {
		for i := range n {
			if err := tx.Put(fmt.Appendf(nil, "%s%06d", prefix, i), val); err != nil {
				return err
			}
		}
		return nil
	})
}

func putN(t *testing.T, db *DB, prefix string, n int) {
	t.Helper()
	if err := put(db, prefix, n); err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Microsecond) // polling interval, not synchronization
	}
}

// TestCheckpointLimitIgnoresPendingFlush: a checkpoint whose Flushed removal
// merely waits for a reader that overlapped it must not raise the memtable
// limit. (It used to become twice the memtable still holding the flushed
// versions: the next checkpoint came at twice MemtableBytes.)
func TestCheckpointLimitIgnoresPendingFlush(t *testing.T) {
	db := openCheckpointDB(t)
	db.ckpt.memLimit.Store(1 << 40) // no background runs while loading
	putN(t, db, "a", 4*testMemtable>>10)
	rd, err := db.Begin(context.Background(), &TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if st := db.store.Stats(); st.PendingFlushes != 1 || st.MemBytes < 4*testMemtable {
		t.Fatalf("the reader should hold back the removal: %d pending, %d bytes", st.PendingFlushes, st.MemBytes)
	}
	if got := db.ckpt.memLimit.Load(); got != testMemtable {
		t.Fatalf("memtable limit %d after a checkpoint whose removal waits for one reader, want %d", got, testMemtable)
	}
	if err := rd.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := db.store.MemBytes(); got >= testMemtable {
		t.Fatalf("memtable %d bytes after the reader closed, want < %d", got, testMemtable)
	}
}

// TestCheckpointLimitRaisedWhenBlocked: a reader that stays open across runs
// (here a strict-2PL transaction's latest reader, which pins the epoch without
// holding back the GC watermark, so every run has new versions to write)
// keeps the memtable from shrinking. The limit must then be raised, or every
// commit would kick a run that frees nothing.
func TestCheckpointLimitRaisedWhenBlocked(t *testing.T) {
	db := openCheckpointDB(t)
	blocker, err := db.Begin(context.Background(), &TxOptions{Strategy: Pessimistic})
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback()
	const commits = 100
	for i := range commits {
		putN(t, db, fmt.Sprintf("b%03d-", i), testMemtable>>12) // a quarter of the memtable each
	}
	runs := db.stats.checkpoints.Load()
	if limit := db.ckpt.memLimit.Load(); limit <= testMemtable {
		t.Fatalf("memtable limit %d after %d runs blocked by a reader, want it raised", limit, runs)
	}
	// Doubling: about log2(100/4) runs, plus the few before the raise and
	// those racing the commits.
	if runs > 20 {
		t.Fatalf("%d checkpoints for %d commits while a reader blocks every removal", runs, commits)
	}
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got := db.ckpt.memLimit.Load(); got != testMemtable {
		t.Fatalf("memtable limit %d once the reader closed, want %d", got, testMemtable)
	}
}

// TestCheckpointStallsCommitters: while a checkpoint cannot finish (the test
// holds the checkpointer's mutex), a committer that leaves the memtable more
// than MemtableBytes/4 over the limit waits for the run; it returns once the
// run ends.
func TestCheckpointStallsCommitters(t *testing.T) {
	db := openCheckpointDB(t)
	db.ckpt.mu.Lock()
	locked := true
	defer func() {
		if locked {
			db.ckpt.mu.Unlock()
		}
	}()
	done := make(chan error, 1)
	go func() {
		for i := range 8 {
			if err := put(db, fmt.Sprintf("s%d-", i), testMemtable>>12); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitUntil(t, "a committer to stall", func() bool { return db.ckpt.stalled.Load() == 1 })
	limit := db.ckpt.memLimit.Load()
	if mem := db.store.MemBytes(); mem <= limit+testMemtable/4 {
		t.Fatalf("stalled with the memtable at %d bytes, limit %d", mem, limit)
	}
	select {
	case err := <-done:
		t.Fatalf("the writer finished (%v) while the checkpoint could not run", err)
	default:
	}
	db.ckpt.mu.Unlock()
	locked = false
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stalled committer did not resume after the checkpoint")
	}
	if got := db.ckpt.stalled.Load(); got != 0 {
		t.Fatalf("%d committers still stalled", got)
	}
}

// TestCheckpointNoStallInMemory: an in-memory database's runs only GC, so
// its committers never wait.
func TestCheckpointNoStallInMemory(t *testing.T) {
	c := defaultConfig(t)
	c.MemtableBytes = testMemtable
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.ckpt.mu.Lock()
	defer db.ckpt.mu.Unlock()
	for i := range 8 {
		putN(t, db, fmt.Sprintf("m%d-", i), testMemtable>>12)
	}
	if got := db.store.MemBytes(); got <= testMemtable+testMemtable/4 {
		t.Fatalf("memtable %d bytes: the test did not go over the stall level", got)
	}
}

// TestCheckpointDropsTombstones: a queue whose rows are deleted leaves no
// tombstones in the memtable after a checkpoint (scans would step over every
// one of them), while live values stay cached.
func TestCheckpointDropsTombstones(t *testing.T) {
	db := openCheckpointDB(t)
	ctx := context.Background()
	if err := put(db, "job/", 200); err != nil {
		t.Fatal(err)
	}
	if err := put(db, "keep/", 10); err != nil {
		t.Fatal(err)
	}
	err := db.Update(ctx, nil, func(tx *Tx) error {
		for i := range 200 {
			if err := tx.Delete(fmt.Appendf(nil, "job/%06d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if keys := db.store.Stats().Keys; keys != 10 {
		t.Fatalf("memtable holds %d keys after the checkpoint, want the 10 live ones", keys)
	}
	n := 0
	err = db.View(ctx, func(tx *Tx) error {
		return tx.Scan(nil, nil, func(_, _ []byte) error { n++; return nil })
	})
	if err != nil || n != 10 {
		t.Fatalf("scan saw %d keys (%v), want 10", n, err)
	}
}
