package txn

import (
	"context"
	"encoding/binary"
	"testing"
)

// BenchmarkStatsOverhead measures what per-transaction counting costs on the
// commit path: one-key read-modify-write commits in memory, with the
// counters on (as shipped) and off. Issue 4's budget is 2%:
//
//	go test -run '^$' -bench StatsOverhead -count 10 ./txn | benchstat -col /stats -
func BenchmarkStatsOverhead(b *testing.B) {
	for _, on := range []bool{true, false} {
		name := "stats=on"
		if !on {
			name = "stats=off"
		}
		b.Run(name, func(b *testing.B) {
			var c Config
			c.EnsureDefaults()
			db, err := Open("", c)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.statsOff = !on
			ctx := context.Background()
			key := []byte("counter")
			b.ReportAllocs()
			for b.Loop() {
				err := db.Update(ctx, nil, func(tx *Tx) error {
					v, err := tx.Get(key)
					if err != nil && err != ErrNotFound {
						return err
					}
					var n uint64
					if len(v) == 8 {
						n = binary.BigEndian.Uint64(v)
					}
					return tx.Put(key, binary.BigEndian.AppendUint64(nil, n+1))
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
