package bench

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

const sections = 4

func contentSpec() Spec {
	return Spec{
		Name:  "content",
		Title: "Content management",
		Summary: "Long transactions, twenty reads per edit. A reader reads an article's revision, " +
			"lingers, then reads its four sections; an editor reads the revision and a section, " +
			"lingers, then bumps both. Invariant: revision = sum of section edits, in the final state " +
			"and in every reader's view.",
		Profile: Profile{ConflictRate: 0.03, ReadWriteRatio: 20, TxDuration: 2 * time.Second},
		HotSet:  50, Sweep: []int{5, 50, 500},
		Think: time.Millisecond,
		Recipe: "pessimistic: an edit LockKeys(Exclusive) the revision and its section, then reads and writes; " +
			"a reader reads the revision, then the sections, in key order; the others: plain Get and Put",
		OrderedLocks: true,
		New: func(cfg Config) Instance {
			return &content{n: cfg.hotSet(50), think: cfg.think(time.Millisecond)}
		},
	}
}

type content struct {
	n         int
	think     time.Duration
	edits     atomic.Int64  // acknowledged edits
	tornViews atomic.Uint64 // committed readers that saw a revision not matching the sections
}

func revKey(a int) []byte { return key("cms/article/%06d/rev", a) }

func sectionKey(a, s int) []byte { return key("cms/article/%06d/sec/%d", a, s) }

func (c *content) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, c.n*(sections+1), func(i int) ([]byte, []byte) {
		a, s := i/(sections+1), i%(sections+1)
		if s == sections {
			return revKey(a), enc(0)
		}
		return sectionKey(a, s), enc(0)
	})
}

func (c *content) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	a := w.pick(c.n)
	if !w.oneIn(21) {
		w.readsOnly()
		var torn bool
		err := db.Update(ctx, opts, func(tx *txkv.Tx) (err error) {
			torn, err = c.read(tx, a)
			return err
		})
		if err == nil && torn {
			c.tornViews.Add(1)
		}
		return err
	}
	s := w.pick(sections)
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
		if err := lockForWrite(tx, opts.Strategy, revKey(a), sectionKey(a, s)); err != nil {
			return err
		}
		rev, err := getInt(tx, revKey(a))
		if err != nil {
			return err
		}
		n, err := getInt(tx, sectionKey(a, s))
		if err != nil {
			return err
		}
		think(c.think)
		if err := tx.Put(sectionKey(a, s), enc(n+1)); err != nil {
			return err
		}
		return tx.Put(revKey(a), enc(rev+1))
	})
	if err == nil {
		c.edits.Add(1)
	}
	return err
}

// read is a reader's transaction. It reports a torn view (revision and
// sections disagree) rather than failing: an optimistic reader may see one
// and then fail validation, which is the algorithm working. Only a torn view
// in a transaction that commits breaks the invariant.
func (c *content) read(tx *txkv.Tx, a int) (torn bool, err error) {
	rev, err := getInt(tx, revKey(a))
	if err != nil {
		return false, err
	}
	think(c.think)
	var sum int64
	for s := range sections {
		n, err := getInt(tx, sectionKey(a, s))
		if err != nil {
			return false, err
		}
		sum += n
	}
	return sum != rev, nil
}

func (c *content) Check(ctx context.Context, db *txkv.DB) error {
	if n := c.tornViews.Load(); n > 0 {
		return violation("content: %d readers saw a torn article", n)
	}
	return db.View(ctx, func(tx *txkv.Tx) error {
		var total int64
		for a := range c.n {
			rev, err := getInt(tx, revKey(a))
			if err != nil {
				return err
			}
			var sum int64
			for s := range sections {
				n, err := getInt(tx, sectionKey(a, s))
				if err != nil {
					return err
				}
				sum += n
			}
			if sum != rev {
				return violation("content: article %d revision %d, sections sum to %d", a, rev, sum)
			}
			total += rev
		}
		if total != c.edits.Load() {
			return violation("content: %d edits stored, %d acknowledged", total, c.edits.Load())
		}
		return nil
	})
}
