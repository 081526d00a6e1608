package crash_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// TestLogFailureEveryCommitter injects a failed log commit (Options.BeforeLogCommit, the
// seam inside each batch's bbolt transaction) while many transactions of every strategy are
// committing at once, and checks PostgreSQL's fsyncgate lesson end to end:
//
//   - every committer caught by the failure gets ErrLogFailed — those in the failing batch
//     and those queued behind it;
//   - their writes were installed (a commit releases its locks before its batch is durable)
//     but are never reported: a reader that sees one fails with ErrLogFailed instead of
//     returning;
//   - what was acknowledged before stays readable, writes are refused;
//   - after a reopen everything acknowledged is there and nothing that failed is.
//
// The hook holds the first batch of the failing phase open until all committers have
// enqueued their records behind it (Stats.WALQueued), then either fails that batch ("first
// batch fails") or lets it pass and fails the next one, which then carries the whole queue
// ("next batch fails").
func TestLogFailureEveryCommitter(t *testing.T) {
	for _, failFirst := range []bool{true, false} {
		name := "next-batch-fails"
		if failFirst {
			name = "first-batch-fails"
		}
		t.Run(name, func(t *testing.T) { logFailureRun(t, failFirst) })
	}
}

const committers = 32

// The hook's phases.
const (
	hookPass = iota // batches commit
	hookHold        // the next batch waits for release, then passes or fails
	hookFail        // batches fail
)

func logFailureRun(t *testing.T, failFirst bool) {
	var phase atomic.Int32
	var failures atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	injected := errors.New("injected fsync failure")
	opts := txkv.DefaultOptions()
	opts.LockTimeout = txkv.Forever
	opts.BeforeLogCommit = func() error {
		switch phase.Load() {
		case hookHold:
			phase.Store(hookFail) // only the writer goroutine calls the hook
			close(entered)
			<-release
			if failFirst {
				failures.Add(1)
				return injected
			}
		case hookFail:
			failures.Add(1)
			return injected
		}
		return nil
	}
	path := filepath.Join(t.TempDir(), "logfail.db")
	db, err := txkv.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = db.Close()
		}
	}()
	acked := map[string]string{}
	for i := range 20 {
		k, v := fmt.Sprintf("acked/%02d", i), fmt.Sprintf("v%d", i)
		if err := db.Put(bg, []byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		acked[k] = v
	}

	// The first committer's batch enters the hook and is held there.
	phase.Store(hookHold)
	firstErr := make(chan error, 1)
	go func() { firstErr <- db.Put(bg, []byte("first"), []byte("1")) }()
	select {
	case <-entered:
	case <-time.After(waitLimit):
		t.Fatal("the first batch never reached the hook")
	}
	// Many committers of every strategy queue up behind it.
	errs := make([]error, committers)
	var wg sync.WaitGroup
	for i := range committers {
		wg.Go(func() {
			opts := &txkv.TxOptions{Strategy: strategies[i%len(strategies)]}
			errs[i] = db.Update(bg, opts, func(tx *txkv.Tx) error {
				if _, err := tx.Get([]byte(fmt.Sprintf("acked/%02d", i%20))); err != nil {
					return err
				}
				return tx.Put(fmt.Appendf(nil, "fail/%02d", i), []byte("never"))
			})
		})
	}
	waitCommitting(t, db, committers, release)
	close(release)
	wg.Wait()

	err = <-firstErr
	switch {
	case failFirst && !errors.Is(err, txkv.ErrLogFailed):
		t.Fatalf("the committer of the failing batch got %v, want ErrLogFailed", err)
	case !failFirst && err != nil:
		t.Fatalf("the committer of the batch that passed got %v", err)
	case !failFirst:
		acked["first"] = "1"
	}
	for i, err := range errs {
		if !errors.Is(err, txkv.ErrLogFailed) {
			t.Errorf("committer %d (%v) got %v, want ErrLogFailed", i, strategies[i%len(strategies)], err)
		}
	}
	if n := failures.Load(); n != 1 {
		t.Errorf("the hook failed %d batches: after the first failure the log must not try again", n)
	}
	t.Logf("%d concurrent committers all got ErrLogFailed; WAL batches %d", committers, db.Stats().WALBatches)

	checkAfterFailure(t, db, acked, failFirst)
	closed = true
	_ = db.Close() // may report the failure; the file must still be usable

	db2, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatalf("reopen after a log failure: %v", err)
	}
	defer db2.Close()
	checkReadable(t, db2, acked, failFirst)
	if err := db2.Put(bg, []byte("after-reopen"), []byte("ok")); err != nil {
		t.Fatalf("write after reopening: %v", err)
	}
	if err := db2.Close(); err != nil {
		t.Fatal(err)
	}
	boltCheck(t, path)
}

// waitCommitting polls the log queue until n records wait behind the held batch: their
// committers have enqueued, installed and released their locks, and wait for durability.
func waitCommitting(t *testing.T, db *txkv.DB, n int, release chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		queued := db.Stats().WALQueued
		if queued >= n {
			return
		}
		if time.Now().After(deadline) {
			close(release) // let the committers finish, so the test can end
			t.Fatalf("only %d of %d committers reached the log", queued, n)
		}
		time.Sleep(50 * time.Microsecond) // polling interval, not synchronization
	}
}

// checkAfterFailure: reads work and see exactly what was acknowledged; writes are refused.
func checkAfterFailure(t *testing.T, db *txkv.DB, acked map[string]string, failFirst bool) {
	t.Helper()
	checkReadable(t, db, acked, failFirst)
	if err := db.Put(bg, []byte("later"), []byte("x")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Errorf("Put after the log failed: %v, want ErrLogFailed", err)
	}
	err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
		return tx.Put([]byte("later"), []byte("x"))
	})
	if !errors.Is(err, txkv.ErrLogFailed) {
		t.Errorf("Update after the log failed: %v, want ErrLogFailed", err)
	}
	if _, err := db.Get(bg, []byte("later")); !errors.Is(err, txkv.ErrNotFound) {
		t.Errorf("a refused write is visible: %v", err)
	}
	// The failed commits' writes were installed before their batch failed: a reader
	// that meets one must fail rather than report it.
	err = db.View(bg, func(tx *txkv.Tx) error {
		return tx.Scan([]byte("fail/"), []byte("fail0"), func(k, _ []byte) error { return nil })
	})
	if !errors.Is(err, txkv.ErrLogFailed) {
		t.Errorf("a View that scanned the failed writes returned %v, want ErrLogFailed", err)
	}
	if _, err := db.Get(bg, []byte("fail/00")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Errorf("Get of a failed write: %v, want ErrLogFailed", err)
	}
}

// checkReadable: every acknowledged key has its value; nothing that failed is reported (after
// a reopen: it is not there at all).
func checkReadable(t *testing.T, db *txkv.DB, acked map[string]string, failFirst bool) {
	t.Helper()
	for k, v := range acked {
		got, err := db.Get(bg, []byte(k))
		if err != nil || string(got) != v {
			t.Errorf("acknowledged %s: %q, %v; want %q", k, got, err, v)
		}
	}
	err := db.View(bg, func(tx *txkv.Tx) error {
		return tx.Scan([]byte("fail/"), []byte("fail0"), func(k, _ []byte) error {
			return fmt.Errorf("the failed write %s is visible", k)
		})
	})
	if err != nil && !errors.Is(err, txkv.ErrLogFailed) {
		t.Error(err)
	}
	v, err := db.Get(bg, []byte("first"))
	if failFirst && err == nil {
		t.Errorf("the failed batch's write was reported: %q", v)
	}
}
