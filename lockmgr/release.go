package lockmgr

import (
	"time"
)

// ReleaseAll releases every lock txn holds (commit or abort) and forgets
// its label and age. Waiters are granted in queue order. It must not run
// while the same transaction is blocked in Acquire.
func (m *Manager) ReleaseAll(txn uint64) {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	st := ts.mu.txns[txn]
	if st == nil {
		ts.mu.Unlock()
		return
	}
	held := st.held
	st.held = nil
	ts.mu.Unlock()

	hasRange, rescan := false, false
	for r := held; r != nil; {
		next := r.txnNext
		if r.isRange {
			hasRange = true
		} else if m.releasePoint(r) {
			rescan = true
		}
		r = next
	}
	switch {
	case hasRange:
		m.lockAll()
		m.releaseRangesLocked(txn)
		m.rescanAllLocked()
		m.unlockAll()
	case rescan:
		m.rescanRanges()
	}
	m.forgetTxn(ts, txn, st)
}

// releasePoint drops one point holder and grants what became grantable. It
// reports whether range waiters must be re-examined.
func (m *Manager) releasePoint(r *request) bool {
	h := r.head
	sh := h.sh
	sh.mu.Lock()
	h.holders.remove(r)
	if h.waiters.head != nil {
		m.refreshHeadLocked(h, h.waiters.head, false)
	}
	sh.maybeFreeHeadLocked(h)
	sh.freeRequestLocked(r)
	rescan := m.rt.waiting > 0
	sh.mu.Unlock()
	return rescan
}

// refreshHeadLocked re-examines h's queue from waiter `from` on, after a
// holder left or changed (from is the head) or a waiter just before `from`
// arrived or left: in queue order it grants every waiter that has no edge
// left and gives the others their new edges, in one graph update.
//
// Unless full, it stops after the first exclusive waiter that still waits:
// the edges of a request behind it lead only to requests at or after that
// waiter, and it has no holder edges, so they did not change. Releasing a
// key with N exclusive waiters thus grants the first and re-links the
// second, in O(1). full is for range changes, which touch every waiter.
func (m *Manager) refreshHeadLocked(h *lockHead, from *request, full bool) {
	sh := h.sh
	edges, waits, grants := sh.mu.edges[:0], sh.mu.waits[:0], sh.mu.grants[:0]
	for w := from; w != nil; {
		next := w.next
		w.prevX = nearestX(w.prev)
		lo := len(edges)
		edges = m.pointEdgesLocked(w, w.prev, edges)
		if len(edges) == lo {
			m.grantWaiterLocked(h, w)
			grants = append(grants, w)
		} else {
			waits = append(waits, waitUpdate{r: w, lo: lo, hi: len(edges)})
			if !full && w.mode.conflictsWithAll() {
				break
			}
		}
		w = next
	}
	m.graph.Lock()
	for _, g := range grants {
		m.graph.RemoveLocked(g.txn)
	}
	for _, u := range waits {
		m.graph.SetWaitsLocked(u.r.txn, u.r, edges[u.lo:u.hi])
	}
	m.graph.Unlock()
	for _, g := range grants {
		m.handOff(g)
	}
	if f := m.hooks.refreshed; f != nil {
		f(len(waits) + len(grants))
	}
	clear(grants)
	clear(waits)
	sh.keepScratchLocked(edges, waits, grants)
}

// grantWaiterLocked moves waiting w to h's holders (or folds an upgrade into
// the transaction's existing holder). The caller updates the graph and then
// calls handOff.
func (m *Manager) grantWaiterLocked(h *lockHead, w *request) {
	h.waiters.remove(w)
	w.prevX = nil
	w.state, w.since = stateGranted, time.Now()
	if w.upgrade {
		if mine := h.holderOf(w.txn); mine != nil {
			if !mine.mode.covers(w.mode) {
				mine.mode = w.mode
			}
			w.merged = true
			return
		}
	}
	h.holders.pushBack(w)
}

// handOff completes a grant made under the lock: the request joins its
// transaction's held list and its waiter is woken. The waiter already holds
// the lock; waking it only tells it so.
func (m *Manager) handOff(g *request) {
	if !g.merged {
		m.addHeld(g)
	}
	close(g.ready)
}

// rescanRanges re-examines range waiters after a point lock went away.
func (m *Manager) rescanRanges() {
	m.lockAll()
	m.settleRangesLocked()
	m.unlockAll()
}

// forgetTxn drops txn's state — its label and age — once its locks are
// released, not before: a waiter that times out while txn still holds a
// lock names txn in its error, with the label (labels are looked up under
// the shard lock that shows txn as a holder).
func (m *Manager) forgetTxn(ts *txnShard, txn uint64, st *txnState) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.mu.txns[txn] != st {
		return
	}
	delete(ts.mu.txns, txn)
	*st = txnState{}
	if len(ts.mu.free) < maxFree {
		ts.mu.free = append(ts.mu.free, st)
	}
}
