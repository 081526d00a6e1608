package lockmgr

import (
	"bytes"
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// rangeTable holds every range request, granted and waiting. Ranges are
// rare (scans under strict 2PL, LockRange), so it is a plain slice searched
// linearly, and range operations lock every shard: that lets point
// operations read the table under their one shard lock, and skip it entirely
// while it is empty.
type rangeTable struct {
	reqs    []*request // arrival order
	waiting int        // number of waiting entries in reqs
}

// touches reports whether range request x covers point key (isRange false)
// or overlaps the range [key,end).
func (x *request) touches(key, end []byte, isRange bool) bool {
	if !isRange {
		return inRange(key, x.key, x.end)
	}
	return overlaps(x.key, x.end, key, end)
}

// rangeCoversLocked reports whether txn holds a granted range lock that
// covers the target in mode or a stronger one. Needs any one shard lock.
func (m *Manager) rangeCoversLocked(txn uint64, key, end []byte, isRange bool, mode Mode) bool {
	for _, x := range m.rt.reqs {
		if x.txn != txn || x.state != stateGranted || !x.mode.covers(mode) {
			continue
		}
		if isRange && contains(x.key, x.end, key, end) || !isRange && inRange(key, x.key, x.end) {
			return true
		}
	}
	return false
}

// rangeTouchesLocked reports whether txn holds a granted range lock that
// overlaps the target: a request of txn on the target is then an upgrade.
func (m *Manager) rangeTouchesLocked(txn uint64, key, end []byte, isRange bool) bool {
	for _, x := range m.rt.reqs {
		if x.txn == txn && x.state == stateGranted && x.touches(key, end, isRange) {
			return true
		}
	}
	return false
}

// rangeEdgesOfPointLocked appends the edges from point request w to range
// requests covering its key: soft to conflicting waiting ranges queued
// ahead of w and, if front (no exclusive point request is queued ahead of
// w), hard to conflicting granted ranges.
func (m *Manager) rangeEdgesOfPointLocked(w *request, front bool, dst []deadlock.Edge) []deadlock.Edge {
	for _, x := range m.rt.reqs {
		if x.txn == w.txn || !Conflicts(x.mode, w.mode) || !inRange(w.head.key, x.key, x.end) {
			continue
		}
		switch {
		case x.state == stateGranted && front:
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn})
		case x.state == stateWaiting && m.aheadLocked(x, w):
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn, Soft: true})
		}
	}
	return dst
}

// passedRangeWaiterLocked reports whether point request w (granted at once
// or just queued) went ahead of a conflicting range request that waits:
// that one's edges changed.
func (m *Manager) passedRangeWaiterLocked(w *request) bool {
	for _, x := range m.rt.reqs {
		if x.state == stateWaiting && x.txn != w.txn && Conflicts(x.mode, w.mode) &&
			inRange(w.head.key, x.key, x.end) && m.aheadLocked(w, x) {
			return true
		}
	}
	return false
}

// holdsOverlapping reports whether txn holds a granted lock, point or
// range, that overlaps the target. It walks txn's held list under its
// transaction shard's mutex, so the caller may hold shard mutexes (the lock
// order allows it) but not that one. It is asked about transactions that
// wait, or about the caller's own: their held lists do not change meanwhile.
func (m *Manager) holdsOverlapping(txn uint64, key, end []byte, isRange bool) bool {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st := ts.mu.txns[txn]
	if st == nil {
		return false
	}
	for r := st.held; r != nil; r = r.txnNext {
		if k, e, rr := r.target(); targetsOverlap(k, e, rr, key, end, isRange) {
			return true
		}
	}
	return false
}

// passesLocked reports whether request a goes ahead of request b by the
// upgrade exception: a's transaction already holds a granted lock that
// overlaps b's target. If that lock conflicts with b, b waits for a's
// transaction whatever the order, and a behind b would be a deadlock; if
// not, b is still behind a transaction that is already inside its target.
// The answer is fixed while both wait: a waiting transaction neither gains
// nor loses locks.
func (m *Manager) passesLocked(a, b *request) bool {
	ak, ae, ar := a.target()
	bk, be, br := b.target()
	switch {
	case !a.upgrade && targetWithin(bk, be, br, ak, ae, ar):
		return false // a holds nothing in its own target, which includes b's
	case a.upgrade && targetWithin(ak, ae, ar, bk, be, br):
		return true // a holds something in its own target, which lies in b's
	}
	return m.holdsOverlapping(a.txn, bk, be, br)
}

// aheadLocked reports whether waiting request x is queued ahead of request
// w, so that w waits for x if they conflict: x passes w and w does not pass
// x, or else x comes first in queue order (arrival, unless a deadlock
// resolution moved one of them). On one key's queue this is the list order
// (upgrades first, then arrival); between a point and a range, or two
// ranges, an exception applies only where the targets meet what the
// requester holds, so a range request does not barge past waiters
// elsewhere in its range.
func (m *Manager) aheadLocked(x, w *request) bool {
	px, pw := m.passesLocked(x, w), m.passesLocked(w, x)
	if px != pw {
		return px
	}
	return x.before(w)
}

// acquireRange is Acquire of a range, with every shard locked: the same
// steps as acquirePoint, over the whole table (rangeEdgesLocked).
func (m *Manager) acquireRange(ctx context.Context, txn uint64, t Target, mode Mode, p WaitPolicy, timeout time.Duration) error {
	m.lockAll()
	if m.rangeCoversLocked(txn, t.Key, t.End, true, mode) {
		m.unlockAll()
		return nil // re-entrant
	}
	r := &request{txn: txn, mode: mode, key: bytes.Clone(t.Key), end: bytes.Clone(t.End),
		isRange: true, seq: math.MaxUint64, pos: math.MaxUint64}
	r.upgrade = m.holdsOverlapping(txn, t.Key, t.End, true)
	edges := m.rangeEdgesLocked(r, nil)
	if len(edges) == 0 {
		m.rt.reqs = append(m.rt.reqs, r)
		m.grantRangeLocked(r)
		m.rescanPassedLocked(r)
		m.unlockAll()
		m.handOffRange(r)
		return nil
	}
	if p != Block {
		err := m.refusalLocked(p, r, edges)
		m.unlockAll()
		return m.refused(p, err)
	}
	if err := ctx.Err(); err != nil {
		m.unlockAll()
		return err
	}
	if !m.enqueueRangeLocked(r, edges) {
		m.unlockAll()
		return ErrAlreadyWaiting
	}
	note := m.noteWaitLocked(r)
	m.unlockAll()
	return m.block(ctx, r, timeout, note)
}

// enqueueRangeLocked queues range request r, with the out-edges computed
// for it, and re-examines the waiters it went ahead of. It fails if the
// transaction already waits for something else. Needs every shard.
func (m *Manager) enqueueRangeLocked(r *request, edges []deadlock.Edge) bool {
	r.state, r.seq, r.since, r.ready = stateWaiting, m.seq.Add(1), time.Now(), make(chan struct{})
	r.pos = r.seq << posShift
	r.queued = r.since
	if !m.registerWait(r, edges) {
		return false
	}
	m.rt.reqs = append(m.rt.reqs, r)
	m.rt.waiting++
	m.rescanPassedLocked(r)
	m.stats.waits.Add(1) // before the request is visible: see enqueuePointLocked
	return true
}

// forEachHeadLocked calls fn for every point lock head. Needs every shard.
func (m *Manager) forEachHeadLocked(fn func(h *lockHead)) {
	for i := range m.shards {
		for _, h := range m.shards[i].mu.heads {
			for ; h != nil; h = h.hnext {
				fn(h)
			}
		}
	}
}

// rangeEdgesLocked appends the edges of range request w: hard to other
// transactions holding conflicting point locks inside it or conflicting
// overlapping ranges, soft to conflicting requests (point or range) queued
// ahead of it. O(locked keys + ranges). Needs every shard.
func (m *Manager) rangeEdgesLocked(w *request, dst []deadlock.Edge) []deadlock.Edge {
	m.forEachHeadLocked(func(h *lockHead) {
		if !inRange(h.key, w.key, w.end) {
			return
		}
		for x := h.holders.head; x != nil; x = x.next {
			if x.txn != w.txn && Conflicts(x.mode, w.mode) {
				dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn})
			}
		}
		for x := h.waiters.head; x != nil; x = x.next {
			if x.txn != w.txn && Conflicts(x.mode, w.mode) && m.aheadLocked(x, w) {
				dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn, Soft: true})
			}
		}
	})
	for _, x := range m.rt.reqs {
		if x == w || x.txn == w.txn || !Conflicts(x.mode, w.mode) || !overlaps(x.key, x.end, w.key, w.end) {
			continue
		}
		switch {
		case x.state == stateGranted:
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn})
		case x.state == stateWaiting && m.aheadLocked(x, w):
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn, Soft: true})
		}
	}
	return dst
}

// rescanPassedLocked re-examines the waiters a new range request r (just
// granted, or queued) may have gone ahead of, whose edges then changed:
// point waiters inside r only if r's transaction holds something inside r
// (r.upgrade), range waiters whenever some wait. Needs every shard.
func (m *Manager) rescanPassedLocked(r *request) {
	switch {
	case r.upgrade:
		m.rescanAllLocked()
	case m.rt.waiting > 0:
		m.settleRangesLocked()
	}
}

// grantRangeLocked grants range request r (already in the table),
// folding it into an identical range txn already holds.
func (m *Manager) grantRangeLocked(r *request) {
	if r.state == stateWaiting {
		m.rt.waiting--
		r.since = time.Now() // granted after a wait; at once: Since stays zero
	}
	r.state = stateGranted
	for _, x := range m.rt.reqs {
		if x != r && x.txn == r.txn && x.state == stateGranted &&
			bytes.Equal(x.key, r.key) && bytes.Equal(x.end, r.end) && (x.end == nil) == (r.end == nil) {
			if !x.mode.covers(r.mode) {
				x.mode = r.mode
			}
			r.merged = true
			m.rt.reqs = slices.DeleteFunc(m.rt.reqs, func(y *request) bool { return y == r })
			return
		}
	}
}

// handOffRange records a granted range in its transaction's held list and
// wakes its waiter, if any.
func (m *Manager) handOffRange(r *request) {
	if !r.merged {
		m.addHeld(r)
	}
	if r.ready != nil {
		close(r.ready)
	}
}

// releaseRangesLocked drops every granted range of txn.
func (m *Manager) releaseRangesLocked(txn uint64) {
	m.rt.reqs = slices.DeleteFunc(m.rt.reqs, func(y *request) bool {
		return y.txn == txn && y.state == stateGranted
	})
}

// rescanRangesLocked grants every range waiter that has become grantable
// and recomputes the edges of the others; it reports whether it granted
// one. Needs every shard.
func (m *Manager) rescanRangesLocked() bool {
	if m.rt.waiting == 0 {
		return false
	}
	var waiting []*request
	for _, x := range m.rt.reqs {
		if x.state == stateWaiting {
			waiting = append(waiting, x)
		}
	}
	// Any order gives the same grants: a waiter is granted only when no
	// conflicting request is queued ahead of it, still waiting or just
	// granted in this pass. Queue order is simply deterministic.
	slices.SortFunc(waiting, func(a, b *request) int {
		if c := cmp.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	edges := make([][]deadlock.Edge, len(waiting))
	var grants []*request
	for i, w := range waiting {
		if edges[i] = m.rangeEdgesLocked(w, nil); len(edges[i]) == 0 {
			m.grantRangeLocked(w)
			grants = append(grants, w)
		}
	}
	if len(grants) > 0 {
		// A request granted later in the pass may be queued ahead of one
		// examined before: that one now waits for it as a holder.
		for i, w := range waiting {
			if w.state == stateWaiting {
				edges[i] = m.rangeEdgesLocked(w, nil)
			}
		}
	}
	m.graph.Lock()
	for i, w := range waiting {
		if w.state == stateWaiting {
			m.graph.SetWaitsLocked(w.txn, w, edges[i])
		} else {
			m.graph.RemoveLocked(w.txn)
		}
	}
	m.graph.Unlock()
	for _, g := range grants {
		m.handOffRange(g)
	}
	return len(grants) > 0
}

// settleRangesLocked re-examines the range waiters after a point lock or
// request went away. A range granted now holds the keys inside it, so the
// point waiters there are re-linked too. Needs every shard.
func (m *Manager) settleRangesLocked() {
	if m.rescanRangesLocked() {
		m.refreshPointsLocked()
	}
}

// refreshPointsLocked re-examines every point queue in full. Needs every
// shard.
func (m *Manager) refreshPointsLocked() {
	m.forEachHeadLocked(func(h *lockHead) {
		if h.waiters.head != nil {
			m.refreshHeadLocked(h, h.waiters.head, true)
		}
	})
}

// rescanAllLocked re-examines every queue after a range lock went away or
// changed: range waiters first, then every point queue in full, then the
// range waiters' edges once more (a point waiter granted meanwhile is now a
// holder to them; nothing new becomes grantable, since grants only add
// holders). Needs every shard.
func (m *Manager) rescanAllLocked() {
	m.rescanRangesLocked()
	m.refreshPointsLocked()
	m.rescanRangesLocked()
}
