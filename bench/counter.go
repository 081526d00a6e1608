package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

// CounterSpec is the hot counter: every operation is a read-modify-write of
// one of HotSet counters (default 1: one hot key), written the way a new user
// writes it — plain Get, then Put — through db.Update with the strategy under
// test. It is the README's quick-start loop under contention, and it measures
// what the commit protocol promises: with the default retry policy an Update
// does not fail under plain contention, and Hybrid and Adaptive do not turn
// the read-then-write into lock-upgrade deadlocks. Invariant: the counters
// sum to the acknowledged increments.
//
// It is not one of the guide's eight workloads (Workloads), but Lookup finds
// it: txkvbench -workload counter.
func CounterSpec() Spec {
	return Spec{
		Name:  "counter",
		Title: "Hot counter",
		Summary: "Read-modify-write of one hot key (plain Get, then Put) by every worker. " +
			"Invariant: the counter equals the acknowledged increments.",
		Profile: Profile{ConflictRate: 0.5, ReadWriteRatio: 1, TxDuration: 100 * time.Microsecond, UsersCanWait: true},
		HotSet:  1, Sweep: []int{1, 4, 16},
		New: func(cfg Config) Instance { return &counter{n: cfg.hotSet(1), think: cfg.think(0)} },
	}
}

type counter struct {
	n     int
	think time.Duration
	acked atomic.Int64 // increments whose Update returned nil
}

func counterKey(i int) []byte { return key("counter/%04d", i) }

func (c *counter) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, c.n, func(i int) ([]byte, []byte) { return counterKey(i), enc(0) })
}

func (c *counter) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	k := counterKey(w.pick(c.n))
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
		n, err := getInt(tx, k)
		if err != nil {
			return err
		}
		think(c.think)
		return tx.Put(k, enc(n+1))
	})
	if err == nil {
		c.acked.Add(1)
	}
	return err
}

func (c *counter) Check(ctx context.Context, db *txkv.DB) error {
	return db.View(ctx, func(tx *txkv.Tx) error {
		var sum int64
		for i := range c.n {
			n, err := getInt(tx, counterKey(i))
			if err != nil {
				return err
			}
			sum += n
		}
		if want := c.acked.Load(); sum != want {
			return fmt.Errorf("%w: counters sum to %d, %d increments acknowledged", ErrInvariant, sum, want)
		}
		return nil
	})
}
