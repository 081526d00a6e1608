package bench

import (
	"context"
	"time"

	"github.com/txkv/txkv"
)

const bankInitial = 1000

func bankSpec() Spec {
	return Spec{
		Name:  "bank",
		Title: "Bank transfer",
		Summary: "Move 1..100 between two random accounts: read both balances, refuse if the payer " +
			"lacks funds, write both. Invariant: the total is conserved and no balance is negative.",
		Profile: Profile{Critical: true, ConflictRate: 0.30, ReadWriteRatio: 1, TxDuration: 5 * time.Millisecond},
		HotSet:  100, Sweep: []int{10, 100, 10000},
		Recipe: "pessimistic: LockKeys(Exclusive, from, to), then Get, Get, Put, Put (the guide's transfer, §7); " +
			"the others: Get, Get, Put, Put",
		OrderedLocks: true,
		New:          func(cfg Config) Instance { return &bank{n: cfg.hotSet(100), think: cfg.think(0)} },
	}
}

type bank struct {
	n     int
	think time.Duration
}

func acct(i int) []byte { return key("bank/acct/%06d", i) }

func (b *bank) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, b.n, func(i int) ([]byte, []byte) { return acct(i), enc(bankInitial) })
}

func (b *bank) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	from, to := w.pick(b.n), w.pick(b.n-1)
	if to >= from {
		to++ // distinct accounts, uniformly
	}
	amount := int64(1 + w.pick(100))
	return db.Update(ctx, opts, func(tx *txkv.Tx) error {
		if err := lockForWrite(tx, opts.Strategy, acct(from), acct(to)); err != nil {
			return err
		}
		fb, err := getInt(tx, acct(from))
		if err != nil {
			return err
		}
		tb, err := getInt(tx, acct(to))
		if err != nil {
			return err
		}
		think(b.think)
		if fb < amount {
			return ErrRejected
		}
		if err := tx.Put(acct(from), enc(fb-amount)); err != nil {
			return err
		}
		return tx.Put(acct(to), enc(tb+amount))
	})
}

func (b *bank) Check(ctx context.Context, db *txkv.DB) error {
	return db.View(ctx, func(tx *txkv.Tx) error {
		var total int64
		count := 0
		err := scanPrefix(tx, "bank/acct/", func(k, v []byte) error {
			bal, err := dec(v)
			if err != nil {
				return err
			}
			if bal < 0 {
				return violation("bank: %s has a negative balance %d", k, bal)
			}
			total += bal
			count++
			return nil
		})
		if err != nil {
			return err
		}
		if want := int64(b.n) * bankInitial; total != want || count != b.n {
			return violation("bank: %d accounts hold %d, want %d accounts holding %d", count, total, b.n, want)
		}
		return nil
	})
}
