package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

func medicalSpec() Spec {
	return Spec{
		Name:  "medical",
		Title: "Medical records",
		Summary: "One read per edit. An edit reads a patient's record (its edit count n), works, then " +
			"writes the record as n+1 and appends history entry n+1 naming the edit. Invariant: the " +
			"history never loses an edit — entries 1..n exist for a record at n, and every acknowledged " +
			"edit is in it.",
		Profile: Profile{Critical: true, ConflictRate: 0.10, ReadWriteRatio: 1, TxDuration: 50 * time.Millisecond},
		HotSet:  100, Sweep: []int{5, 50, 500},
		Think: 200 * time.Microsecond,
		Recipe: "pessimistic: an edit LockKeys(Exclusive) the record before reading it (no S→X upgrade, guide §4), " +
			"then writes it and its history entry; the others: plain Get and Put",
		OrderedLocks: true,
		New: func(cfg Config) Instance {
			m := &medical{n: cfg.hotSet(100), think: cfg.think(200 * time.Microsecond)}
			m.mu.acked = map[string]int{}
			return m
		},
	}
}

type medical struct {
	n     int
	think time.Duration
	// inconsistent counts reads that saw a record without its history.
	inconsistent atomic.Uint64
	mu           struct {
		sync.Mutex                // protects acked
		acked      map[string]int // edit id -> patient, for every acknowledged edit
	}
}

func recordKey(p int) []byte { return key("med/record/%06d", p) }

func historyKey(p int, n int64) []byte { return key("med/history/%06d/%010d", p, n) }

func (m *medical) Setup(ctx context.Context, db *txkv.DB) error {
	return load(ctx, db, m.n, func(i int) ([]byte, []byte) { return recordKey(i), enc(0) })
}

func (m *medical) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error {
	p := w.pick(m.n)
	if w.oneIn(2) {
		w.readsOnly()
		return db.Update(ctx, opts, func(tx *txkv.Tx) error {
			n, err := getInt(tx, recordKey(p))
			if err != nil || n == 0 {
				return err
			}
			if _, err = tx.Get(historyKey(p, n)); errors.Is(err, txkv.ErrNotFound) {
				// A record at n without history entry n cannot be
				// committed state: this transaction's reads mix two
				// points in time (an Adaptive locked read sees the
				// latest version, its other reads the snapshot). Its
				// commit would fail validation; retry it now, as a
				// non-opaque OCC reader must.
				m.inconsistent.Add(1)
				return errInconsistent
			}
			return err
		})
	}
	id := w.NextID()
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error {
		if err := lockForWrite(tx, opts.Strategy, recordKey(p)); err != nil {
			return err
		}
		n, err := getInt(tx, recordKey(p))
		if err != nil {
			return err
		}
		think(m.think)
		if err := tx.Put(recordKey(p), enc(n+1)); err != nil {
			return err
		}
		return tx.Put(historyKey(p, n+1), []byte(id))
	})
	if err == nil {
		m.mu.Lock()
		m.mu.acked[id] = p
		m.mu.Unlock()
	}
	return err
}

func (m *medical) Check(ctx context.Context, db *txkv.DB) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return db.View(ctx, func(tx *txkv.Tx) error {
		found := 0
		for p := range m.n {
			n, err := getInt(tx, recordKey(p))
			if err != nil {
				return err
			}
			for i := int64(1); i <= n; i++ {
				id, err := tx.Get(historyKey(p, i))
				if err != nil {
					return violation("medical: patient %d at edit %d lacks history entry %d: %v", p, n, i, err)
				}
				if q, ok := m.mu.acked[string(id)]; !ok || q != p {
					return violation("medical: patient %d history entry %d is edit %s, never acknowledged for this patient", p, i, id)
				}
				found++
			}
			if _, err := tx.Get(historyKey(p, n+1)); err == nil {
				return violation("medical: patient %d has history past its edit count %d", p, n)
			}
		}
		if found != len(m.mu.acked) {
			return violation("medical: histories hold %d edits, %d were acknowledged: an edit was lost", found, len(m.mu.acked))
		}
		return nil
	})
}

// errInconsistent is what a transaction returns when its reads cannot all be
// committed state; it wraps ErrConflict, so Update retries.
var errInconsistent = fmt.Errorf("txkv: bench: inconsistent read, retrying: %w", txkv.ErrConflict)

func (m *medical) Counters() map[string]uint64 {
	return map[string]uint64{"inconsistent_reads": m.inconsistent.Load()}
}
