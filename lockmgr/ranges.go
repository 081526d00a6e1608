package lockmgr

import (
	"bytes"
	"context"
	"hash/maphash"
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

func hashKey(seed maphash.Seed, key []byte) uint64 { return maphash.Bytes(seed, key) }

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
// requests covering its key: hard to conflicting granted ranges, soft to
// conflicting waiting ranges queued ahead of w.
func (m *Manager) rangeEdgesOfPointLocked(w *request, dst []deadlock.Edge) []deadlock.Edge {
	for _, x := range m.rt.reqs {
		if x.txn == w.txn || !Conflicts(x.mode, w.mode) || !inRange(w.head.key, x.key, x.end) {
			continue
		}
		switch {
		case x.state == stateGranted:
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn})
		case x.state == stateWaiting && ahead(x, w):
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn, Soft: true})
		}
	}
	return dst
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
			if x.txn != w.txn && Conflicts(x.mode, w.mode) && ahead(x, w) {
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
		case x.state == stateWaiting && ahead(x, w):
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn, Soft: true})
		}
	}
	return dst
}

// ownsInsideLocked reports whether txn holds a point lock inside [key,end)
// or a range overlapping it. Needs every shard.
func (m *Manager) ownsInsideLocked(txn uint64, key, end []byte) bool {
	if m.rangeTouchesLocked(txn, key, end, true) {
		return true
	}
	found := false
	m.forEachHeadLocked(func(h *lockHead) {
		if !found && inRange(h.key, key, end) && h.holderOf(txn) != nil {
			found = true
		}
	})
	return found
}

func (m *Manager) acquireRange(ctx context.Context, txn uint64, t Target, mode Mode, p WaitPolicy, timeout time.Duration) error {
	m.lockAll()
	if m.rangeCoversLocked(txn, t.Key, t.End, true, mode) {
		m.unlockAll()
		return nil // re-entrant
	}
	r := &request{txn: txn, mode: mode, key: bytes.Clone(t.Key), end: bytes.Clone(t.End),
		isRange: true, seq: math.MaxUint64, upgrade: m.ownsInsideLocked(txn, t.Key, t.End)}
	edges := m.rangeEdgesLocked(r, nil)
	if len(edges) == 0 {
		m.rt.reqs = append(m.rt.reqs, r)
		m.grantRangeLocked(r)
		if r.upgrade {
			m.rescanAllLocked() // granted ahead of waiters: their edges change
		}
		m.unlockAll()
		m.handOffRange(r)
		return nil
	}
	if p != Block {
		err := newLockError(ErrLockNotAvailable, txn, t, mode, edges, 0)
		m.unlockAll()
		return m.notAvailable(p, err)
	}
	if err := ctx.Err(); err != nil {
		m.unlockAll()
		return err
	}
	r.state, r.seq, r.since, r.ready = stateWaiting, m.seq.Add(1), time.Now(), make(chan struct{})
	r.queued = r.since
	if !m.registerWait(r, edges) {
		m.unlockAll()
		return ErrAlreadyWaiting
	}
	m.rt.reqs = append(m.rt.reqs, r)
	m.rt.waiting++
	if r.upgrade {
		m.rescanAllLocked() // waiters it jumped ahead of gain edges to txn
	}
	m.stats.waits.Add(1) // before the request is visible: see acquirePoint
	m.unlockAll()
	m.afterEnqueue(txn)
	return m.waitFor(ctx, r, timeout)
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

// removeRangeWaiterLocked takes waiting r out of the table and the graph.
func (m *Manager) removeRangeWaiterLocked(r *request) {
	m.rt.reqs = slices.DeleteFunc(m.rt.reqs, func(y *request) bool { return y == r })
	m.rt.waiting--
	m.graph.Remove(r.txn)
}

// releaseRangesLocked drops every granted range of txn.
func (m *Manager) releaseRangesLocked(txn uint64) {
	m.rt.reqs = slices.DeleteFunc(m.rt.reqs, func(y *request) bool {
		return y.txn == txn && y.state == stateGranted
	})
}

// rescanRangesLocked grants, in queue order, every range waiter that has
// become grantable and recomputes the edges of the others. Needs every shard.
func (m *Manager) rescanRangesLocked() {
	if m.rt.waiting == 0 {
		return
	}
	var waiting []*request
	for _, x := range m.rt.reqs {
		if x.state == stateWaiting {
			waiting = append(waiting, x)
		}
	}
	slices.SortFunc(waiting, func(a, b *request) int {
		if a == b {
			return 0
		}
		if ahead(a, b) {
			return -1
		}
		return 1
	})
	var grants []*request
	type upd struct {
		r     *request
		edges []deadlock.Edge
	}
	var waits []upd
	for _, w := range waiting {
		edges := m.rangeEdgesLocked(w, nil)
		if len(edges) == 0 {
			m.grantRangeLocked(w)
			grants = append(grants, w)
			continue
		}
		waits = append(waits, upd{w, edges})
	}
	m.graph.Lock()
	for _, g := range grants {
		m.graph.RemoveLocked(g.txn)
	}
	for _, u := range waits {
		m.graph.SetWaitsLocked(u.r.txn, u.r, u.edges)
	}
	m.graph.Unlock()
	for _, g := range grants {
		m.handOffRange(g)
	}
}

// rescanAllLocked re-examines every queue after a range lock went away:
// range waiters first, then every point queue. Needs every shard.
func (m *Manager) rescanAllLocked() {
	m.rescanRangesLocked()
	for i := range m.shards {
		for _, h := range m.shards[i].mu.heads {
			for ; h != nil; h = h.hnext {
				if h.waiters.head != nil {
					m.refreshHeadLocked(h, h.waiters.head)
				}
			}
		}
	}
}
