package txn

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkTransfer: what one uncontended Update costs — a bank transfer
// (two Gets, two Puts) between two of 1,000 accounts, one goroutine, per
// strategy; in memory, and on a file without fsync (the log's bbolt
// transaction per batch included). Its allocs/op and B/op are the numbers
// to watch: the garbage they make is what the collector costs a loaded
// process.
//
//	go test -run '^$' -bench Transfer -benchmem ./txn
func BenchmarkTransfer(b *testing.B) {
	for _, disk := range []bool{false, true} {
		for _, st := range []Strategy{Pessimistic, Optimistic} {
			name := fmt.Sprintf("mem/%v", st)
			if disk {
				name = fmt.Sprintf("nosync/%v", st)
			}
			b.Run(name, func(b *testing.B) { benchTransfer(b, openTransferDB(b, disk), st) })
		}
	}
}

func openTransferDB(b *testing.B, disk bool) *DB {
	c := &Options{}
	c.EnsureDefaults()
	path := ""
	if disk {
		c.Sync = SyncNone
		path = filepath.Join(b.TempDir(), "bench.db")
	}
	db, err := Open(path, c)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func benchTransfer(b *testing.B, db *DB, st Strategy) {
	ctx := context.Background()
	const accounts = 1000
	acct := func(i int) []byte { return fmt.Appendf(nil, "acct/%04d", i) }
	for i := range accounts {
		if err := db.Put(ctx, acct(i), binary.BigEndian.AppendUint64(nil, 1e6)); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([][]byte, accounts)
	for i := range keys {
		keys[i] = acct(i)
	}
	opts := &TxOptions{Strategy: st}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		from, to := keys[i%accounts], keys[(i*7+1)%accounts]
		i++
		if err := db.Update(ctx, opts, func(tx *Tx) error { return transfer(tx, from, to) }); err != nil {
			b.Fatal(err)
		}
	}
}

func transfer(tx *Tx, from, to []byte) error {
	fv, err := tx.Get(from)
	if err != nil {
		return err
	}
	tv, err := tx.Get(to)
	if err != nil {
		return err
	}
	f, t := binary.BigEndian.Uint64(fv), binary.BigEndian.Uint64(tv)
	if err := tx.Put(from, binary.BigEndian.AppendUint64(nil, f-1)); err != nil {
		return err
	}
	return tx.Put(to, binary.BigEndian.AppendUint64(nil, t+1))
}
