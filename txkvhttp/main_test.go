package txkvhttp

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/txkv/txkv"
)

// TestMain checks that no test leaves a goroutine behind: an event stream
// must end when its client goes away, and the Server owns none.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// waitLimit bounds every wait on another goroutine: reaching it means a hang.
const waitLimit = 20 * time.Second

func openMem(t testing.TB) *txkv.DB {
	t.Helper()
	db, err := txkv.Open("", nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil && !errors.Is(err, txkv.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// waitFor polls cond until it holds, failing the test after waitLimit.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// isWaiting reports whether transaction id waits for a lock right now.
func isWaiting(db *txkv.DB, id uint64) bool {
	for _, l := range db.Locks() {
		if l.TxID == id && !l.Granted {
			return true
		}
	}
	return false
}

func begin(t testing.TB, db *txkv.DB, label string) *txkv.Tx {
	t.Helper()
	tx, err := db.Begin(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: label})
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	return tx
}

// lock takes key exclusively in tx, failing the test on an error.
func lock(t testing.TB, tx *txkv.Tx, key string) {
	t.Helper()
	if _, err := tx.GetForUpdate([]byte(key)); err != nil && !errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("GetForUpdate(%q): %v", key, err)
	}
}

// queue makes tx wait for key in the background; the error arrives on the
// channel once the wait ends.
func queue(t testing.TB, db *txkv.DB, tx *txkv.Tx, key string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := tx.GetForUpdate([]byte(key))
		if errors.Is(err, txkv.ErrNotFound) {
			err = nil
		}
		done <- err
	}()
	waitFor(t, "txn to queue on "+key, func() bool { return isWaiting(db, tx.ID()) })
	return done
}

// Streams reports the event streams running (for tests).
func (s *Server) Streams() int64 { return s.streams.Load() }
