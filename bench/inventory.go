package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

const (
	invInitial = 100 // units per product at the start
	invRestock = 50  // units per delivery
)

func inventorySpec() Spec {
	return Spec{
		Name:  "inventory",
		Title: "E-commerce inventory",
		Summary: "Ten browses (read three products) per write; a write buys 1..3 units (refused when " +
			"stock is short) or, one in ten, records a delivery of 50. Invariant: never oversold — every " +
			"product's stock = initial + deliveries - orders, and stock >= 0.",
		Profile: Profile{ConflictRate: 0.02, ReadWriteRatio: 10, TxDuration: 5 * time.Millisecond, UsersCanWait: true},
		HotSet:  1000, Sweep: []int{10, 100, 1000},
		Recipe: "pessimistic: a browse LockKeys(Shared) its three products, a purchase LockKeys(Exclusive) its " +
			"product, then reads and writes; the others: plain Get and Put (the guide's buy, §7)",
		OrderedLocks: true,
		New:          func(cfg Config) Instance { return &inventory{n: cfg.hotSet(1000), think: cfg.think(0)} },
	}
}

type inventory struct {
	n     int
	think time.Duration
	units atomic.Int64 // net units sold by acknowledged transactions
}

func stockKey(i int) []byte { return key("inv/stock/%06d", i) }

func (v *inventory) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, v.n, func(i int) ([]byte, []byte) { return stockKey(i), enc(invInitial) })
}

func (v *inventory) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	if !w.oneIn(11) {
		w.readsOnly()
		keys := [][]byte{stockKey(w.pick(v.n)), stockKey(w.pick(v.n)), stockKey(w.pick(v.n))}
		return db.Update(ctx, opts, func(tx *txkv.Tx) error {
			if err := lockForRead(tx, opts.Strategy, keys...); err != nil {
				return err
			}
			for _, k := range keys {
				if _, err := tx.Get(k); err != nil {
					return err
				}
			}
			return nil
		})
	}
	p, id := w.pick(v.n), w.NextID()
	qty := int64(1 + w.pick(3))
	if w.oneIn(10) {
		qty = -invRestock // a delivery: negative units sold
	}
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
		if err := lockForWrite(tx, opts.Strategy, stockKey(p)); err != nil {
			return err
		}
		stock, err := getInt(tx, stockKey(p))
		if err != nil {
			return err
		}
		think(v.think)
		if stock < qty {
			return ErrRejected
		}
		if err := tx.Put(stockKey(p), enc(stock-qty)); err != nil {
			return err
		}
		return tx.Put(key("inv/order/%06d/%s", p, id), enc(qty))
	})
	if err == nil {
		v.units.Add(qty)
	}
	return err
}

func (v *inventory) Check(ctx context.Context, db *txkv.DB) error {
	return db.View(ctx, func(tx *txkv.Tx) error {
		var total int64
		for p := range v.n {
			var sold int64
			err := scanPrefix(tx, string(key("inv/order/%06d/", p)), func(_, val []byte) error {
				q, err := dec(val)
				sold += q
				return err
			})
			if err != nil {
				return err
			}
			stock, err := getInt(tx, stockKey(p))
			if err != nil {
				return err
			}
			if stock < 0 || stock != invInitial-sold {
				return violation("inventory: product %d has stock %d, want %d - %d (orders net of deliveries) >= 0", p, stock, invInitial, sold)
			}
			total += sold
		}
		if total != v.units.Load() {
			return violation("inventory: orders record %d units, acknowledged transactions sold %d", total, v.units.Load())
		}
		return nil
	})
}
