package txkv_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/txkv/txkv"
)

// BenchmarkCounter compares db.Increment (one exclusive lock across read
// and write: never a conflict) with the naive Update doing Get+Put under the
// default optimistic strategy (conflicts and retries under contention), and
// with a client-side CompareAndSwap loop, on one hot counter and on 1,000
// counters, 16 goroutines, in memory and on a durable file:
//
//	go test -run '^$' -bench Counter -count 6 . | benchstat -col /op -
func BenchmarkCounter(b *testing.B) {
	for _, durable := range []bool{false, true} {
		b.Run(fmt.Sprintf("durable=%v", durable), func(b *testing.B) { benchCounters(b, durable) })
	}
}

func benchCounters(b *testing.B, durable bool) {
	for _, keys := range []int{1, 1000} {
		b.Run(fmt.Sprintf("keys=%d/op=Increment", keys), func(b *testing.B) {
			benchCounter(b, durable, keys, func(db *txkv.DB, k []byte) error {
				_, err := db.Increment(context.Background(), k, 1)
				return err
			})
		})
		b.Run(fmt.Sprintf("keys=%d/op=UpdateGetPut", keys), func(b *testing.B) {
			benchCounter(b, durable, keys, func(db *txkv.DB, k []byte) error {
				return db.Update(context.Background(), nil, func(tx *txkv.Tx) error {
					n, err := getCounter(tx, k)
					if err != nil {
						return err
					}
					return tx.Put(k, binary.BigEndian.AppendUint64(nil, n+1))
				})
			})
		})
		b.Run(fmt.Sprintf("keys=%d/op=CompareAndSwap", keys), func(b *testing.B) {
			benchCounter(b, durable, keys, func(db *txkv.DB, k []byte) error {
				ctx := context.Background()
				for {
					old, err := db.Get(ctx, k)
					if err == txkv.ErrNotFound {
						old = nil
					} else if err != nil {
						return err
					}
					var n uint64
					if len(old) == 8 {
						n = binary.BigEndian.Uint64(old)
					}
					ok, err := db.CompareAndSwap(ctx, k, old, binary.BigEndian.AppendUint64(nil, n+1))
					if err != nil || ok {
						return err
					}
				}
			})
		})
	}
}

func benchCounter(b *testing.B, durable bool, keys int, inc func(*txkv.DB, []byte) error) {
	opts := txkv.DefaultOptions()
	opts.Retry = &txkv.RetryPolicy{MaxAttempts: 1 << 20}
	path := ""
	if durable {
		path = filepath.Join(b.TempDir(), "db")
	}
	db, err := txkv.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	b.SetParallelism(8)
	b.ResetTimer()
	var seq int
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if err := inc(db, hotKey((i*7919+seq)%keys)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	st := db.Stats()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "incs/s")
	b.ReportMetric(float64(st.Retries)/float64(b.N), "retries/op")
}
