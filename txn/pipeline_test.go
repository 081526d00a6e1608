package txn

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/txkv/txkv/lockmgr"
)

// No doomed retries: a retry after a conflict takes its snapshot only once the commit it
// lost to is visible. Here a pending timestamp below the winner's holds the read watermark
// back, so the winner is installed but not visible; a retry that did not wait would read
// the old value again and lose again.
func TestRetryStartsAfterTheCommitItLostTo(t *testing.T) {
	db, err := Open("", defaultConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Put(ctx, []byte("k"), []byte("0")); err != nil {
		t.Fatal(err)
	}
	gap := db.store.Next() // pending: ReadTS cannot pass it until DoneDurable(gap)
	winner := make(chan error, 1)
	var seen []string
	attempts := 0
	done := make(chan error, 1)
	go func() {
		done <- db.Update(ctx, &TxOptions{Strategy: Optimistic}, func(tx *Tx) error {
			attempts++
			v, err := tx.Get([]byte("k"))
			if err != nil {
				return err
			}
			seen = append(seen, string(v))
			if attempts == 1 {
				go func() { winner <- db.Put(ctx, []byte("k"), []byte("1")) }()
				waitUntil(t, "the winner's install", func() bool { return db.store.NewestVersion([]byte("k")) > gap })
			}
			return tx.Put([]byte("k"), append(v, 'x'))
		})
	}()
	// The winner waits for visibility (its commit returns only then), and so must the loser's
	// retry: two waiters on the read watermark.
	waitUntil(t, "the retry to wait for the winner's commit", func() bool { return db.store.Stats().Waiters >= 2 })
	db.store.DoneDurable(gap)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-winner; err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || !slices.Equal(seen, []string{"0", "1"}) {
		t.Fatalf("attempts %d read %q; want 2 attempts reading 0, then the winner's 1", attempts, seen)
	}
}

// A victim stays a victim: after a deadlock ends a transaction, its later calls return the
// deadlock error (retryable), not ErrTxDone — so an Update whose callback ignored the first
// error still retries.
func TestDeadlockVictimKeepsItsError(t *testing.T) {
	db, err := Open("", defaultConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	t1, _ := db.Begin(ctx, &TxOptions{Strategy: Pessimistic})
	t2, _ := db.Begin(ctx, &TxOptions{Strategy: Pessimistic}) // younger: the victim
	if err := t1.Put([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := t2.Put([]byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	blocked := make(chan error, 1)
	go func() { blocked <- t1.Put([]byte("b"), []byte("1")) }()
	waitUntil(t, "t1 to wait for b", func() bool { return len(db.Locks()) == 3 })
	err = t2.Put([]byte("a"), []byte("2"))
	if !IsRetryable(err) {
		t.Fatalf("t2 closing the cycle: %v, want a deadlock", err)
	}
	if err := <-blocked; err != nil {
		t.Fatalf("t1 after the victim left: %v", err)
	}
	for _, call := range []func() error{
		func() error { _, err := t2.Get([]byte("a")); return err },
		func() error { return t2.Put([]byte("c"), []byte("3")) },
		t2.Commit,
	} {
		if err := call(); !errors.Is(err, lockmgr.ErrDeadlock) || !IsRetryable(err) {
			t.Fatalf("a later call of the victim: %v, want the deadlock error", err)
		}
	}
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
}
