package txn

import (
	"bytes"
	"math"
	"slices"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
)

// This file is what a failed Update attempt hands the next one (the plan)
// and how the next attempt carries it out: the keys it locks first, in key
// order and in which mode, and the snapshot it re-opens above them.

// prelock is a key a retried Hybrid transaction locks before it starts.
type prelock struct {
	key  []byte
	mode lockmgr.Mode
}

// retryPlan is what a failed Update attempt tells the next one.
type retryPlan struct {
	// age is the first attempt's ID: every retry of an Update is as old as
	// its first attempt when a deadlock victim is chosen (the youngest by
	// age loses), so a retried transaction is not the youngest again each
	// round — the fairness of wound-wait's and CockroachDB's priorities.
	age         uint64
	pessimistic bool      // run pessimistically (Hybrid's fallback)
	pre         []prelock // locks taken first, in key order (Hybrid, escalation)
	hotX        [][]byte  // Adaptive: keys the failed attempt wrote (locked X when hot)
}

// hotX returns the keys an Adaptive retry locks X when it reads them.
func (tx *Tx) hotX() [][]byte {
	if tx.plan == nil {
		return nil
	}
	return tx.plan.hotX
}

// prelocked reports whether the transaction's plan locked key before it ran.
func (tx *Tx) prelocked(key []byte) bool {
	if tx.plan == nil {
		return false
	}
	return slices.ContainsFunc(tx.plan.pre, func(p prelock) bool { return bytes.Equal(p.key, key) })
}

// refreshSnapshot re-opens a snapshot reader after the prelocks, at a
// timestamp that includes the newest version of every prelocked key. Those
// keys cannot change while the locks are held, so the snapshot's reads of
// them stay current until commit: an escalated optimistic retry validates
// them without failing, and a Snapshot-isolation retry writes them without a
// first-updater-wins conflict. (A reader of the latest versions — strict
// 2PL — needs nothing.)
func (tx *Tx) refreshSnapshot(pre []prelock) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.finished() || tx.snap.TS() == math.MaxUint64 {
		return
	}
	var newest uint64
	for _, p := range pre {
		newest = max(newest, tx.db.store.NewestVersion(p.key))
	}
	if newest <= tx.snap.TS() {
		return
	}
	_ = tx.db.store.WaitVisible(tx.ctx, newest) // installed and released: done soon
	tx.snap.Close()
	tx.snap = mvcc.Snapshot{}
	tx.db.store.OpenSnapshot(&tx.snap)
}

// lockPrelocks takes, in key order, the locks a Hybrid retry asks for.
func (tx *Tx) lockPrelocks(pre []prelock) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	for _, p := range pre {
		if err := tx.lockLocked(lockmgr.Point(p.key), p.mode, lockmgr.Block, tx.timeout); err != nil {
			return tx.failLocked(err)
		}
	}
	return nil
}

// rememberHeldLocked adds to the recorded reads the point keys the
// transaction holds locks on, before a retryable failure releases them: a
// pessimistic transaction's reads are not recorded (its locks do their
// work), but its retry must know every key it touched to lock them first.
func (tx *Tx) rememberHeldLocked() {
	for _, l := range tx.db.locks.Held(tx.id) {
		if !l.Range && !slices.ContainsFunc(tx.reads, func(k []byte) bool { return bytes.Equal(k, l.Key) }) {
			tx.reads = append(tx.reads, l.Key)
		}
	}
}

// touched lists the keys this attempt read or wrote, in key order, with the
// mode a pessimistic retry should lock them in.
func (tx *Tx) touched() []prelock {
	ws := tx.writes.Writes()
	out := make([]prelock, 0, len(ws)+len(tx.reads))
	for _, w := range ws {
		if _, skip := tx.tried[string(w.Key)]; !skip {
			out = append(out, prelock{key: w.Key, mode: lockmgr.Exclusive})
		}
	}
	for _, k := range tx.reads {
		_, skip := tx.tried[string(k)]
		if _, _, ok := tx.writes.Get(k); !ok && !skip {
			out = append(out, prelock{key: k, mode: lockmgr.Shared})
		}
	}
	return sortPrelocks(out)
}

// sortPrelocks sorts p by key and drops duplicates, keeping the strongest
// mode, and returns the shortened slice. (It once returned nothing and left
// zeroed entries at the end: a key read twice became a lock on the empty
// key "" in the retry, which TestConflictStormEveryUpdateCommits caught
// under -race.)
func sortPrelocks(p []prelock) []prelock {
	slicesSortFunc(p, func(a, b prelock) int { return bytes.Compare(a.key, b.key) })
	// Drop duplicates, keeping the strongest mode.
	w := 0
	for i := range p {
		if w > 0 && bytes.Equal(p[w-1].key, p[i].key) {
			if p[i].mode == lockmgr.Exclusive {
				p[w-1].mode = lockmgr.Exclusive
			}
			continue
		}
		p[w] = p[i]
		w++
	}
	clear(p[w:])
	return p[:w]
}
