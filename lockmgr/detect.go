package lockmgr

import (
	"bytes"
	"slices"

	"github.com/txkv/txkv/deadlock"
)

// afterEnqueue runs the immediate deadlock search from a new waiter.
func (m *Manager) afterEnqueue(txn uint64) {
	if m.opts.Detection == deadlock.Immediate {
		if h := m.hooks.searching; h != nil {
			h(txn)
		}
		m.detect(txn)
	}
}

// detect is the immediate-mode search, run by a transaction right after it
// queued. Before this wait the graph had no cycle (every earlier one was
// broken), so every cycle now runs through txn, and searching from each new
// waiter finds every cycle (completeness). The search holds only the graph
// lock; a cycle found is confirmed against the lock table before anyone is
// aborted (resolve). Two cycles can share the new waiter (deadlock-soft-2:
// aborting one member re-links the queue behind it into the second), so the
// search repeats until no cycle runs through txn.
func (m *Manager) detect(txn uint64) {
	for {
		m.graph.Lock()
		cycle := m.graph.FindCycleLocked(txn)
		m.graph.Unlock()
		if cycle == nil || !m.resolve(cycle, txn) {
			return
		}
	}
}

// sweep is the periodic-mode pass: find any cycle and resolve it; resolve
// keeps going until the graph is acyclic.
func (m *Manager) sweep() {
	m.graph.Lock()
	cycle := m.graph.FindAnyCycleLocked()
	m.graph.Unlock()
	if cycle != nil {
		m.resolve(cycle, 0)
	}
}

// resolve confirms cycle against the live lock table, with every shard
// locked so nothing moves, and breaks it. If the cycle has dissolved
// meanwhile (a member timed out, another resolver already broke it) it
// searches once more, from requester and then the whole graph, on the
// frozen table, so a real deadlock hidden behind a stale one is not missed.
// Breaking one cycle can leave another that shared members with it
// (aborting a victim re-links the queue behind it); so, still on the
// frozen table, it sweeps the whole graph and breaks what is left. It
// reports whether a cycle was broken.
func (m *Manager) resolve(cycle []deadlock.Edge, requester uint64) bool {
	m.lockAll()
	m.settleRangesLocked() // range waiters' edges may lag point changes: make the graph exact
	cycle, edges, live := m.liveCycleLocked(cycle)
	if !live {
		cycle, edges, live = m.findLiveCycleLocked(requester)
	}
	var victims []*DeadlockError
	resolved := live
	for live {
		if derr := m.breakLocked(cycle, edges); derr != nil {
			victims = append(victims, derr)
		}
		cycle, edges, live = m.findLiveCycleLocked(0)
	}
	m.unlockAll()
	m.stats.deadlocks.Add(uint64(len(victims)))
	m.notify(victims)
	return resolved
}

// findLiveCycleLocked searches the graph for a cycle through from (0: none)
// and then for any cycle, and confirms it (liveCycleLocked). Needs every
// shard.
func (m *Manager) findLiveCycleLocked(from uint64) ([]deadlock.Edge, []WaitEdge, bool) {
	m.graph.Lock()
	var cycle []deadlock.Edge
	if from != 0 {
		cycle = m.graph.FindCycleLocked(from)
	}
	if cycle == nil {
		cycle = m.graph.FindAnyCycleLocked()
	}
	m.graph.Unlock()
	if cycle == nil {
		return nil, nil, false
	}
	return m.liveCycleLocked(cycle)
}

// breakLocked breaks one confirmed cycle, without an abort if it can:
//
//  1. a member whose only blockers are queued requests is granted out of
//     queue order (reorderLocked, PostgreSQL's deadlock-soft);
//  2. else a member is moved ahead of the queued request its soft edge
//     points at, if that leaves no cycle through it (rearrangeLocked);
//  3. else the victim chosen by the policy is aborted; its error is
//     returned for OnDeadlock.
//
// Needs every shard.
func (m *Manager) breakLocked(cycle []deadlock.Edge, edges []WaitEdge) *DeadlockError {
	if m.reorderLocked(edges) || m.rearrangeLocked(edges) {
		return nil
	}
	victim := deadlock.ChooseVictimByAge(cycle, m.opts.Victim, m.closerLocked(cycle), m.age)
	return m.abortLocked(victim, edges)
}

// notify calls OnDeadlock for each victim, with no lock held. If a call
// panics, the deferred call still reports the victims after it, and the
// panic goes on to the caller once they are done.
func (m *Manager) notify(victims []*DeadlockError) {
	if len(victims) == 0 || m.opts.OnDeadlock == nil {
		return
	}
	defer m.notify(victims[1:])
	m.opts.OnDeadlock(victims[0])
}

// reorderLocked breaks a soft deadlock without an abort, as PostgreSQL does
// by rearranging wait queues: a cycle member whose only blockers are
// requests queued ahead of it (no granted lock conflicts with it) is
// granted out of queue order. That cannot create a
// cycle: the granted transaction stops waiting, and the only new edges point
// at it. FIFO is given up only where keeping it would cost an abort. Needs
// every shard.
func (m *Manager) reorderLocked(edges []WaitEdge) bool {
	for _, e := range edges {
		if !e.Soft {
			continue
		}
		r, ok := m.graph.WaitingOn(e.Waiter)
		if !ok || r.state != stateWaiting {
			continue
		}
		if !m.compatibleWithHoldersLocked(r) {
			continue
		}
		m.stats.reorders.Add(1)
		if h := m.hooks.resolved; h != nil {
			h("reorder", r.txn, 0)
		}
		m.graph.Remove(r.txn)
		if r.isRange {
			m.grantRangeLocked(r)
			m.handOffRange(r)
			m.rescanAllLocked()
			return true
		}
		h := r.head
		m.grantWaiterLocked(h, r)
		if h.waiters.head != nil {
			m.refreshHeadLocked(h, h.waiters.head, true)
		}
		m.handOff(r)
		m.settleRangesLocked()
		return true
	}
	return false
}

// compatibleWithHoldersLocked reports whether waiting r conflicts with no
// granted lock: only requests queued ahead keep it waiting. Needs every
// shard.
func (m *Manager) compatibleWithHoldersLocked(r *request) bool {
	return len(m.holdersOfLocked(r, nil)) == 0
}

// rearrangeLocked breaks a soft cycle that reorderLocked cannot, because
// every member also waits for a holder, by moving a queued request as
// PostgreSQL's deadlock checker rearranges a wait queue: for a soft edge
// A ~> B of the cycle where B is ahead of A by queue order alone (neither
// passes the other, or both do: see aheadLocked), A is moved just ahead of
// B. A
// still waits (for its holders), B and the requests A passed now wait for
// A. Every new edge points at A, so the move leaves no cycle at all if it
// leaves none through A; then it is kept, else undone. One move is tried
// per soft edge, not combinations of moves. Needs every shard.
func (m *Manager) rearrangeLocked(edges []WaitEdge) bool {
	for _, e := range edges {
		if !e.Soft {
			continue
		}
		a, aok := m.graph.WaitingOn(e.Waiter)
		b, bok := m.graph.WaitingOn(e.Holder)
		if !aok || !bok || !m.movableAheadLocked(a, b) {
			continue
		}
		pos := a.pos
		m.moveLocked(a, b.pos-1)
		if m.graph.FindCycle(a.txn) == nil {
			m.stats.reorders.Add(1)
			if h := m.hooks.resolved; h != nil {
				h("move", a.txn, b.txn)
			}
			return true
		}
		m.moveLocked(a, pos)
	}
	return false
}

// movableAheadLocked reports whether waiting a may be moved just ahead of
// waiting b: b is ahead of a by queue order alone (neither passes the
// other, or both do), their targets overlap and their modes conflict.
func (m *Manager) movableAheadLocked(a, b *request) bool {
	if a.state != stateWaiting || b.state != stateWaiting || !Conflicts(a.mode, b.mode) ||
		m.passesLocked(a, b) != m.passesLocked(b, a) || !b.before(a) {
		return false
	}
	ak, ae, ar := a.target()
	bk, be, br := b.target()
	return targetsOverlap(ak, ae, ar, bk, be, br)
}

// moveLocked gives waiting r a new queue position and re-derives the edges
// that depend on it: the waiters of r's key (a point) or of every queue (a
// range), and the range waiters. Nothing is granted: r still waits for a
// holder, and the others only gain or lose edges to r. Needs every shard.
func (m *Manager) moveLocked(r *request, pos uint64) {
	r.pos = pos
	if r.isRange {
		m.rescanAllLocked()
		return
	}
	h := r.head
	h.waiters.remove(r)
	h.insertSortedLocked(r)
	m.refreshHeadLocked(h, h.waiters.head, true)
	m.settleRangesLocked()
}

// closerLocked names the member whose wait closed cycle: the member that
// started waiting last. Not simply the transaction running the search: two
// waiters' searches can overlap, and the earlier waiter's search may find
// the cycle only a later wait closed (seen as a flaky
// TestDeadlockVictimRequester: both saw the cycle, and the one that was
// waiting first, searching late, named itself).
func (m *Manager) closerLocked(cycle []deadlock.Edge) uint64 {
	var closer, latest uint64
	m.graph.Lock()
	defer m.graph.Unlock()
	for _, e := range cycle {
		if r, ok := m.graph.WaitingOnLocked(e.Waiter); ok && r.seq >= latest {
			latest, closer = r.seq, e.Waiter
		}
	}
	return closer
}

// liveCycleLocked re-checks every edge of cycle against the lock table: the
// waiter still waits on the request the graph names, and the holder is still
// one of its blockers (recomputed from the queues, not read from the graph).
// If so it returns the cycle, with the live edges' kinds and shortened
// (shortcut), and its edges described for a DeadlockError. O(cycle length
// + holders of its members). Needs every shard.
func (m *Manager) liveCycleLocked(cycle []deadlock.Edge) ([]deadlock.Edge, []WaitEdge, bool) {
	if !deadlock.IsCycle(cycle) {
		return nil, nil, false
	}
	reqs := make([]*request, len(cycle))
	m.graph.Lock()
	for i, e := range cycle {
		reqs[i], _ = m.graph.WaitingOnLocked(e.Waiter)
	}
	m.graph.Unlock()
	// chords[from[i]:from[i+1]] are cycle[i].Waiter's holder edges.
	var live, chords []deadlock.Edge
	from := make([]int, len(cycle)+1)
	for i, e := range cycle {
		r := reqs[i]
		if r == nil || r.state != stateWaiting {
			return nil, nil, false
		}
		live = m.liveEdgesLocked(r, live[:0])
		edge, ok := edgeTo(live, e.Holder)
		if !ok {
			return nil, nil, false
		}
		cycle[i] = edge
		from[i] = len(chords)
		chords = m.holdersOfLocked(r, chords)
	}
	from[len(cycle)] = len(chords)
	cycle = shortcut(cycle, func(i int) []deadlock.Edge { return chords[from[i]:from[i+1]] })
	out := make([]WaitEdge, len(cycle))
	for i, e := range cycle {
		r, _ := m.graph.WaitingOn(e.Waiter)
		key, end, isRange := r.target()
		out[i] = WaitEdge{Waiter: e.Waiter, Holder: e.Holder, Key: bytes.Clone(key), End: bytes.Clone(end),
			Range: isRange, Mode: r.mode, Soft: e.Soft, Upgrade: r.upgrade,
			HolderMode: m.blockerModeLocked(r, e.Holder, e.Soft)}
	}
	return cycle, out, true
}

// blockerModeLocked is the mode in which txn blocks waiting request r: the
// strongest mode it holds on r's target (hard), or the mode of its request
// queued ahead of r (soft). For reports only. Needs every shard.
func (m *Manager) blockerModeLocked(r *request, txn uint64, soft bool) Mode {
	key, end, isRange := r.target()
	mode := Shared
	note := func(x *request) {
		if x.txn == txn && (x.state == stateGranted) != soft && x.mode.covers(mode) {
			mode = x.mode
		}
	}
	if r.head != nil {
		for _, l := range []reqList{r.head.holders, r.head.waiters} {
			for x := l.head; x != nil; x = x.next {
				note(x)
			}
		}
	}
	for _, x := range m.rt.reqs {
		if x.touches(key, end, isRange) {
			note(x)
		}
	}
	return mode
}

// liveEdgesLocked appends waiting request r's edges, recomputed from the
// lock table. Needs every shard.
func (m *Manager) liveEdgesLocked(r *request, dst []deadlock.Edge) []deadlock.Edge {
	if r.isRange {
		return m.rangeEdgesLocked(r, dst)
	}
	return m.pointEdgesLocked(r, r.prev, dst)
}

// edgeTo returns the edge to holder among edges: hard if any of them is.
func edgeTo(edges []deadlock.Edge, holder uint64) (deadlock.Edge, bool) {
	var out deadlock.Edge
	found := false
	for _, e := range edges {
		if e.Holder != holder {
			continue
		}
		if !found {
			out, found = e, true
		}
		out.Soft = out.Soft && e.Soft
	}
	return out, found
}

// shortcut returns a cycle through cycle[0].Waiter that takes the chords
// the lock table offers, chords(i) being the hard edges of cycle[i].Waiter
// to the holders it conflicts with. The graph keeps only enough edges to
// preserve reachability (see the package doc, "Edges"), so a cycle found in
// it may run along a whole queue while its first waiter also waits for a
// holder further on; the victim is better chosen among the transactions of
// the short cycle. From each member it jumps to the furthest member of the
// cycle that member waits for as a holder.
func shortcut(cycle []deadlock.Edge, chords func(i int) []deadlock.Edge) []deadlock.Edge {
	n := len(cycle)
	at := make(map[uint64]int, n)
	for i, e := range cycle {
		at[e.Waiter] = i
	}
	var out []deadlock.Edge // nil until a chord is taken
	for i := 0; i < n; {
		next, e := i+1, cycle[i]
		for _, c := range chords(i) {
			j, ok := at[c.Holder]
			if ok && j == 0 {
				j = n // back to the start: the cycle closes
			}
			if ok && j > next {
				next, e = j, c
			}
		}
		if next > i+1 && out == nil {
			out = append(make([]deadlock.Edge, 0, n), cycle[:i]...)
		}
		if out != nil {
			out = append(out, e)
		}
		i = next
	}
	if out == nil {
		return cycle
	}
	return out
}

// holdersOfLocked appends the hard edges of waiting request r: one per
// other transaction holding a lock that conflicts with it, point or range.
// Needs every shard.
func (m *Manager) holdersOfLocked(r *request, dst []deadlock.Edge) []deadlock.Edge {
	if r.isRange {
		lo := len(dst)
		dst = m.rangeEdgesLocked(r, dst)
		hard := slices.DeleteFunc(dst[lo:], func(e deadlock.Edge) bool { return e.Soft })
		return dst[:lo+len(hard)]
	}
	dst = m.holderEdgesLocked(r, dst)
	for _, x := range m.rt.reqs {
		if x.txn != r.txn && x.state == stateGranted && Conflicts(x.mode, r.mode) && inRange(r.head.key, x.key, x.end) {
			dst = append(dst, deadlock.Edge{Waiter: r.txn, Holder: x.txn})
		}
	}
	return dst
}

// abortLocked ends victim's wait with a *DeadlockError and re-examines the
// queue it was in. Needs every shard.
func (m *Manager) abortLocked(victim uint64, edges []WaitEdge) *DeadlockError {
	r, ok := m.graph.WaitingOn(victim)
	if !ok {
		return nil
	}
	derr := &DeadlockError{Victim: victim, Cycle: edges}
	for _, e := range edges {
		if l := m.label(e.Waiter); l != "" {
			if derr.Labels == nil {
				derr.Labels = make(map[uint64]string)
			}
			derr.Labels[e.Waiter] = l
		}
	}
	r.state, r.err = stateAborted, derr
	if h := m.hooks.resolved; h != nil {
		h("victim", victim, 0)
	}
	if r.isRange {
		m.removeRangeWaiterLocked(r)
		m.rescanAllLocked()
	} else {
		m.removePointWaiterLocked(r)
		m.settleRangesLocked()
	}
	close(r.ready)
	return derr
}
