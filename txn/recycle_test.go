package txn

import (
	"context"
	"errors"
	"testing"

	"github.com/txkv/txkv/wal"
)

// View reuses its finished transactions: over many Views some Tx comes back.
// (sync.Pool may drop any item — under -race it drops a quarter on purpose
// — so the test asks only that reuse happens, not that it always does.)
func TestViewRecyclesTransactions(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	seen := map[*Tx]bool{}
	reused := false
	for range 200 {
		err := db.View(context.Background(), func(tx *Tx) error {
			reused = reused || seen[tx]
			seen[tx] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !reused {
		t.Fatalf("200 Views used %d distinct transactions: none was recycled", len(seen))
	}
}

// A recycled Tx starts clean: a View after one that wrote its reads and
// failed sees nothing of it.
func TestRecycledTransactionStartsClean(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	errStop := errors.New("stop")
	for range 50 {
		err := db.View(context.Background(), func(tx *Tx) error {
			if tx.state != stateActive || tx.nReads != 0 || tx.abortErr != nil || tx.writes.Len() != 0 || tx.recyclable {
				t.Fatalf("recycled tx not reset: state=%v reads=%d abortErr=%v", tx.state, tx.nReads, tx.abortErr)
			}
			if _, err := tx.Get([]byte("k")); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get = %v", err)
			}
			return errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatalf("View = %v", err)
		}
	}
}

// A transaction something else may still touch is never recycled: one
// whose context's AfterFunc ran (it rolled the transaction back from
// another goroutine), and one that Close rolled back.
func TestViewDoesNotRecycleReachableTransactions(t *testing.T) {
	t.Run("cancelled", func(t *testing.T) {
		db := openAdaptive(t, AdaptiveNever)
		ctx, cancel := context.WithCancel(context.Background())
		var got *Tx
		err := db.View(ctx, func(tx *Tx) error {
			got = tx
			cancel()
			<-tx.Context().Done()
			_, err := tx.Get([]byte("k")) // waits for the asynchronous rollback
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("View = %v, want context.Canceled", err)
		}
		if got.recyclable {
			t.Fatal("a transaction its AfterFunc rolled back was marked recyclable")
		}
	})
	t.Run("closed", func(t *testing.T) {
		db := openAdaptive(t, AdaptiveNever)
		entered, release := make(chan *Tx), make(chan struct{})
		done := make(chan error)
		go func() {
			done <- db.View(context.Background(), func(tx *Tx) error {
				entered <- tx
				<-release
				return nil
			})
		}()
		tx := <-entered
		closed := make(chan error)
		go func() { closed <- db.Close() }()
		<-tx.Context().Done() // Close has cancelled the DB's context
		close(release)
		if err := <-done; !errors.Is(err, wal.ErrClosed) {
			t.Fatalf("View = %v, want ErrClosed", err)
		}
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if tx.recyclable {
			t.Fatal("a transaction Close rolled back was marked recyclable")
		}
	})
}

// Update reuses its finished attempts' transactions too, and a recycled Tx
// starts clean: no writes, reads or locks of the attempt before it, which
// wrote, and — on every other attempt — failed retryably.
func TestUpdateRecyclesTransactions(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	seen := map[*Tx]bool{}
	reused := false
	for i := range 200 {
		attempts := 0
		err := db.Update(context.Background(), &TxOptions{Strategy: Pessimistic}, func(tx *Tx) error {
			reused = reused || seen[tx]
			seen[tx] = true
			if tx.state != stateActive || tx.nReads != 0 || tx.writes.Len() != 0 || len(tx.reads) != 0 || tx.recyclable {
				t.Fatalf("recycled tx not reset: state=%v reads=%d writes=%d", tx.state, tx.nReads, tx.writes.Len())
			}
			if held := db.locks.Held(tx.ID()); len(held) != 0 {
				t.Fatalf("a fresh attempt holds %v", held)
			}
			if _, err := tx.Get([]byte("k")); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err := tx.Put([]byte("k"), []byte{byte(i)}); err != nil {
				return err
			}
			if attempts++; attempts == 1 && i%2 == 0 {
				return &ConflictError{Key: []byte("k")} // retryable: the next attempt may get this Tx back
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !reused {
		t.Fatalf("200 Updates used %d distinct transactions: none was recycled", len(seen))
	}
}
