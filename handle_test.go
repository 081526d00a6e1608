package txkv_test

import (
	"errors"
	"testing"

	"github.com/txkv/txkv"
)

// A handle kept past the end of its View fails with ErrTxDone — also while
// the transaction object behind it, recycled, serves a later View (where,
// without the handle's ID check, the stale handle would read and act in
// someone else's transaction).
func TestViewHandleKeptPastItsEnd(t *testing.T) {
	db := openMem(t, nil)
	key := []byte("k")
	if err := db.Put(bg, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		var stale *txkv.Tx
		if err := db.View(bg, func(tx *txkv.Tx) error { stale = tx; return nil }); err != nil {
			t.Fatal(err)
		}
		staleID := stale.ID()
		err := db.View(bg, func(tx *txkv.Tx) error {
			if _, err := stale.Get(key); !errors.Is(err, txkv.ErrTxDone) {
				t.Fatalf("stale Get = %v, want ErrTxDone", err)
			}
			if _, _, err := stale.GetVersioned(key); !errors.Is(err, txkv.ErrTxDone) {
				t.Fatalf("stale GetVersioned = %v, want ErrTxDone", err)
			}
			scan := stale.Scan(nil, nil, func(k, v []byte) error { return nil })
			if !errors.Is(scan, txkv.ErrTxDone) {
				t.Fatalf("stale Scan = %v, want ErrTxDone", scan)
			}
			if stale.ID() != staleID || stale.ID() == tx.ID() {
				t.Fatalf("stale ID %d, issued %d, current %d", stale.ID(), staleID, tx.ID())
			}
			_, err := tx.Get(key) // the current handle is unaffected
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
