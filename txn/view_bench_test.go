package txn

import (
	"context"
	"testing"
)

// BenchmarkView: what a read-only transaction costs beyond its reads — one
// View with one Get of a key that is always in cache (a 64-key memtable), so
// the memory misses of a large dataset do not hide it. From every core.
//
//	go test -run '^$' -bench View -benchmem ./txn
func BenchmarkView(b *testing.B) {
	db := openBenchDB(b)
	ctx := context.Background()
	keys := make([][]byte, 64)
	for i := range keys {
		keys[i] = []byte{'k', byte(i)}
		if err := db.Put(ctx, keys[i], []byte("value-of-sixteen")); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("View", func(b *testing.B) {
		parallelReads(b, keys, func(k []byte) error {
			return db.View(ctx, func(tx *Tx) error { _, err := tx.Get(k); return err })
		})
	})
	b.Run("DBGet", func(b *testing.B) { // the floor: a snapshot and a lookup
		parallelReads(b, keys, func(k []byte) error { _, err := db.Get(ctx, k); return err })
	})
}

func parallelReads(b *testing.B, keys [][]byte, read func(k []byte) error) {
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := read(keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
