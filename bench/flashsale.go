package bench

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

const (
	saleStock = 200 // units per product
	saleBatch = 2   // orders a fulfilment transaction claims at once
)

var (
	queueStart = []byte("fs/queue/")
	queueEnd   = prefixEnd(queueStart)
	fulfilled  = []byte("F")
	soldOut    = []byte("S")
)

func flashSaleSpec() Spec {
	return Spec{
		Name:  "flashsale",
		Title: "Flash sale (queue + SKIP LOCKED)",
		Summary: "Customers enqueue orders for a few products; fulfilment workers claim the oldest " +
			"orders with ScanForUpdate + SkipLocked, decrement the stock (or mark the order sold out), " +
			"record the result and dequeue. Invariant: never oversold, and every acknowledged order is " +
			"either still queued or handled exactly once.",
		Profile: Profile{ConflictRate: 0.60, ReadWriteRatio: 1, TxDuration: 10 * time.Millisecond, UsersCanWait: true},
		HotSet:  4, Sweep: []int{1, 4, 16},
		Recipe: "every strategy: claim orders with ScanForUpdate + SkipLocked (the guide's grab, §7); " +
			"pessimistic then LockKeys(Exclusive) their results and stock counters before reading them",
		OrderedLocks: true,
		New: func(cfg Config) Instance {
			f := &flashSale{n: cfg.hotSet(4), think: cfg.think(0)}
			f.mu.acked = map[string]int{}
			return f
		},
	}
}

type flashSale struct {
	n          int
	think      time.Duration
	seq        atomic.Uint64 // order numbers
	emptyPolls atomic.Uint64
	twice      atomic.Uint64 // orders found already handled by a claimant
	mu         struct {
		sync.Mutex                // protects acked
		acked      map[string]int // queue key -> product, for every acknowledged order
	}
}

func saleStockKey(p int) []byte { return key("fs/stock/%06d", p) }

func resultKey(queueKey []byte) []byte {
	return append([]byte("fs/result/"), queueKey[len(queueStart):]...)
}

func (f *flashSale) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, f.n, func(i int) ([]byte, []byte) { return saleStockKey(i), enc(saleStock) })
}

func (f *flashSale) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	if w.oneIn(3) {
		return f.enqueue(ctx, db, opts, w)
	}
	return db.Update(ctx, opts, func(tx *txkv.Tx) error {
		orders, err := tx.ScanForUpdate(queueStart, queueEnd, saleBatch, txkv.SkipLocked())
		if err != nil {
			return err
		}
		if len(orders) == 0 {
			f.emptyPolls.Add(1)
			return ErrRejected
		}
		if err := lockForWrite(tx, opts.Strategy, claimKeys(orders)...); err != nil {
			return err
		}
		think(f.think)
		for _, o := range orders {
			if err := f.fulfil(tx, o); err != nil {
				return err
			}
		}
		return nil
	})
}

func (f *flashSale) enqueue(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	k := key("fs/queue/%012d", f.seq.Add(1))
	p := w.pick(f.n)
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error { return tx.Put(k, enc(int64(p))) })
	if err == nil {
		f.mu.Lock()
		f.mu.acked[string(k)] = p
		f.mu.Unlock()
	}
	return err
}

// claimKeys are the keys handling orders writes besides the orders
// themselves: their results and their products' stock counters. Two claimed
// orders may be for the same product, or two workers' batches for the same
// two products in opposite orders: locked one by one as fulfil reaches them,
// those would deadlock.
func claimKeys(orders []txkv.KV) [][]byte {
	var keys [][]byte
	for _, o := range orders {
		keys = append(keys, resultKey(o.Key))
		if p, err := dec(o.Value); err == nil {
			keys = append(keys, saleStockKey(int(p)))
		}
	}
	return keys
}

// fulfil handles one claimed order.
func (f *flashSale) fulfil(tx *txkv.Tx, o txkv.KV) error {
	if _, err := tx.Get(resultKey(o.Key)); err == nil {
		f.twice.Add(1)
	} else if !errors.Is(err, txkv.ErrNotFound) {
		return err
	}
	p, err := dec(o.Value)
	if err != nil {
		return err
	}
	stock, err := getInt(tx, saleStockKey(int(p)))
	if err != nil {
		return err
	}
	outcome := soldOut
	if stock > 0 {
		outcome = fulfilled
		if err := tx.Put(saleStockKey(int(p)), enc(stock-1)); err != nil {
			return err
		}
	}
	if err := tx.Put(resultKey(o.Key), outcome); err != nil {
		return err
	}
	return tx.Delete(o.Key)
}

func (f *flashSale) Counters() map[string]uint64 {
	return map[string]uint64{"empty_polls": f.emptyPolls.Load(), "handled_twice": f.twice.Load()}
}

func (f *flashSale) Check(ctx context.Context, db *txkv.DB) error {
	if n := f.twice.Load(); n > 0 {
		return violation("flashsale: %d orders were claimed after being handled", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return db.View(ctx, func(tx *txkv.Tx) error {
		seen := map[string]bool{}
		err := tx.Scan(queueStart, queueEnd, func(k, _ []byte) error {
			seen[string(k)] = true
			return nil
		})
		if err != nil {
			return err
		}
		sold := make([]int64, f.n)
		err = scanPrefix(tx, "fs/result/", func(k, v []byte) error {
			qk := "fs/queue/" + string(k[len("fs/result/"):])
			p, ok := f.mu.acked[qk]
			if !ok || seen[qk] {
				return violation("flashsale: result %s for an order never acknowledged or still queued", k)
			}
			seen[qk] = true
			if bytes.Equal(v, fulfilled) {
				sold[p]++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(seen) != len(f.mu.acked) {
			return violation("flashsale: %d orders acknowledged, %d queued or handled", len(f.mu.acked), len(seen))
		}
		for p := range f.n {
			stock, err := getInt(tx, saleStockKey(p))
			if err != nil {
				return err
			}
			if stock < 0 || stock != saleStock-sold[p] {
				return violation("flashsale: product %d stock %d after %d sales of %d: oversold", p, stock, sold[p], saleStock)
			}
		}
		return nil
	})
}
