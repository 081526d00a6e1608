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

// The same for Update, whose attempts' transactions are recycled too: a
// kept handle fails with ErrTxDone, and its Put never lands in the
// transaction that now reuses the object behind it.
func TestUpdateHandleKeptPastItsEnd(t *testing.T) {
	db := openMem(t, nil)
	key := []byte("k")
	for i := range 100 {
		var stale *txkv.Tx
		if err := db.Update(bg, nil, func(tx *txkv.Tx) error { stale = tx; return tx.Put(key, []byte("mine")) }); err != nil {
			t.Fatal(err)
		}
		err := db.Update(bg, nil, func(tx *txkv.Tx) error {
			if err := stale.Put(key, []byte("stale")); !errors.Is(err, txkv.ErrTxDone) {
				t.Fatalf("stale Put = %v, want ErrTxDone", err)
			}
			return tx.Put(key, []byte{byte(i)})
		})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := db.Get(bg, key); err != nil || len(v) != 1 || v[0] != byte(i) {
			t.Fatalf("after the second Update: %q, %v", v, err)
		}
	}
}
