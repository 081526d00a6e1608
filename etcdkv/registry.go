package etcdkv

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
)

// registry is the handle's own view of its transactions' locks: what each
// holds and what it waits for. It answers Locks without a round trip and
// finds deadlocks among this handle's transactions at once; waits on
// other handles' transactions are not in it (the detector finds those
// cycles: detector.go).
type registry struct {
	mu   sync.Mutex // protects txs and last
	txs  map[uint64]*regTx
	last *txkv.DeadlockError
}

// regTx is one transaction's locks, as the registry knows them.
type regTx struct {
	label string
	held  []lockmgr.LockInfo
	wait  *lockmgr.LockInfo // the request it waits for, if any
	// waitsFor are the transactions of this handle in the way of wait;
	// blockers of other handles are left out.
	waitsFor []uint64
	// waitEdges describe waitsFor for a deadlock report, in the same order.
	waitEdges []lockmgr.WaitEdge
}

func info(id uint64, label string, e *entry, granted bool) lockmgr.LockInfo {
	li := lockmgr.LockInfo{TxID: id, Label: label, Key: bytes.Clone(e.start), Range: e.isRange,
		Mode: e.mode, Granted: granted}
	if e.isRange {
		li.End = bytes.Clone(e.end)
	}
	if !granted {
		li.Since = time.Now()
	}
	return li
}

func (r *registry) txLocked(id uint64, label string) *regTx {
	t := r.txs[id]
	if t == nil {
		t = &regTx{label: label}
		r.txs[id] = t
	}
	return t
}

// granted records a lock the transaction now holds.
func (r *registry) granted(id uint64, label string, e *entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.txLocked(id, label)
	t.wait, t.waitsFor, t.waitEdges = nil, nil, nil
	t.held = append(t.held, info(id, label, e, true))
}

// waiting records that transaction id waits for e behind blockers, and
// returns a *DeadlockError if that closes a cycle of this handle's
// transactions: the requester, whose wait closed it, is the victim.
func (r *registry) waiting(id uint64, label string, e *entry, blockers []entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.txLocked(id, label)
	if t.wait == nil {
		w := info(id, label, e, false)
		t.wait = &w
	}
	t.waitsFor, t.waitEdges = t.waitsFor[:0], t.waitEdges[:0]
	for i := range blockers {
		b := &blockers[i]
		if b.own.lease != e.own.lease || slices.Contains(t.waitsFor, b.own.tx) {
			continue
		}
		t.waitsFor = append(t.waitsFor, b.own.tx)
		t.waitEdges = append(t.waitEdges, lockmgr.WaitEdge{Waiter: id, Holder: b.own.tx,
			Key: bytes.Clone(e.start), End: bytes.Clone(e.end), Range: e.isRange, Mode: e.mode,
			HolderMode: b.mode, Soft: !b.granted, Upgrade: e.base > 0})
	}
	cycle := r.cycleLocked(id)
	if cycle == nil {
		return nil
	}
	t.wait, t.waitsFor, t.waitEdges = nil, nil, nil
	de := &txkv.DeadlockError{Victim: id, Cycle: cycle, Labels: r.labelsLocked(cycle)}
	r.last = de
	return de
}

// cycleLocked returns the edges of a cycle through start, if the waits
// recorded hold one (depth-first search).
func (r *registry) cycleLocked(start uint64) []lockmgr.WaitEdge {
	seen := map[uint64]bool{}
	var path []lockmgr.WaitEdge
	var visit func(id uint64) bool
	visit = func(id uint64) bool {
		t := r.txs[id]
		if t == nil || t.wait == nil {
			return false
		}
		for i, next := range t.waitsFor {
			path = append(path, t.waitEdges[i])
			if next == start {
				return true
			}
			if !seen[next] {
				seen[next] = true
				if visit(next) {
					return true
				}
			}
			path = path[:len(path)-1]
		}
		return false
	}
	if visit(start) {
		return slices.Clone(path)
	}
	return nil
}

func (r *registry) labelsLocked(cycle []lockmgr.WaitEdge) map[uint64]string {
	var labels map[uint64]string
	for _, ed := range cycle {
		if t := r.txs[ed.Waiter]; t != nil && t.label != "" {
			if labels == nil {
				labels = map[uint64]string{}
			}
			labels[ed.Waiter] = t.label
		}
	}
	return labels
}

// stopWaiting clears the transaction's wait (granted elsewhere, or given up).
func (r *registry) stopWaiting(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.txs[id]; t != nil {
		t.wait, t.waitsFor, t.waitEdges = nil, nil, nil
	}
}

// released forgets the transaction: it holds and waits for nothing.
func (r *registry) released(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.txs, id)
}

// locks lists the holders and waiters, holders first on each target.
func (r *registry) locks() []lockmgr.LockInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []lockmgr.LockInfo
	for _, t := range r.txs {
		out = append(out, t.held...)
		if t.wait != nil {
			out = append(out, *t.wait)
		}
	}
	slices.SortStableFunc(out, func(a, b lockmgr.LockInfo) int {
		if c := bytes.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		if a.Granted != b.Granted {
			if a.Granted {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.TxID, b.TxID)
	})
	return out
}

// setLast records a deadlock this handle's transaction lost.
func (r *registry) setLast(de *txkv.DeadlockError) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = de
}

func (r *registry) lastDeadlock() *txkv.DeadlockError {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}
