package etcdkv_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// TestSingleKeyWritesRespectLocks: a single-key write (Put, Delete,
// CompareAndSwap, Increment) from another handle, issued while a
// Pessimistic transaction holds the key exclusive, waits for its commit
// and applies after it, as a one-key transaction does locally. Before,
// each was a bare etcd request that ignored lock entries: the Put applied
// at once and the holder's commit overwrote it (a lost update).
func TestSingleKeyWritesRespectLocks(t *testing.T) {
	counter := func(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }
	for _, c := range []struct {
		name  string
		write func(db *txkv.DB, k []byte) error
		want  []byte // the key's value after the holder's commit and the write
	}{
		{"Put", func(db *txkv.DB, k []byte) error { return db.Put(bg, k, counter(100)) }, counter(100)},
		{"Delete", func(db *txkv.DB, k []byte) error { return db.Delete(bg, k) }, nil},
		// The swap expects the value from before the holder's commit: its
		// write must wait for the lock, then fail validation and find 15.
		// Before, it swapped at once and the holder's commit overwrote it,
		// though CompareAndSwap had reported success.
		{"CompareAndSwap", func(db *txkv.DB, k []byte) error {
			ok, err := db.CompareAndSwap(bg, k, counter(5), counter(100))
			if err == nil && ok {
				err = errors.New("swapped: the swap was applied before the holder's commit")
			}
			return err
		}, counter(15)},
		{"Increment", func(db *txkv.DB, k []byte) error {
			n, err := db.Increment(bg, k, 1)
			if err == nil && n != 16 {
				err = errors.New("incremented the value before the holder's commit")
			}
			return err
		}, counter(16)},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbs := openN(t, 2)
			holder, other := dbs[0], dbs[1]
			k := []byte("counter")
			if err := holder.Put(bg, k, counter(5)); err != nil {
				t.Fatal(err)
			}
			tx, err := holder.Begin(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic})
			if err != nil {
				t.Fatal(err)
			}
			v, err := tx.GetForUpdate(k)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.write(other, k) }()
			select {
			case err := <-done:
				t.Fatalf("the write returned (%v) while the key was locked exclusive", err)
			case <-time.After(300 * time.Millisecond):
			}
			n := int64(binary.BigEndian.Uint64(v))
			if err := tx.Put(k, counter(n+10)); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("holder's commit: %v", err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			got, err := other.Get(bg, k)
			if c.want == nil {
				if !errors.Is(err, txkv.ErrNotFound) {
					t.Fatalf("after both: %x, %v; want the key deleted", got, err)
				}
				return
			}
			if err != nil || string(got) != string(c.want) {
				t.Fatalf("after both: %x, %v; want %x", got, err, c.want)
			}
		})
	}
}
