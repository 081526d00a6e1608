package lockmgr

import (
	"bytes"

	"github.com/txkv/txkv/deadlock"
)

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
// locked so nothing moves, and aborts exactly one victim. If the cycle has
// dissolved meanwhile (a member timed out, another resolver already broke
// it) it searches once more, from requester and then the whole graph, on the
// frozen table, so a real deadlock hidden behind a stale one is not missed. Aborting a victim
// re-links the queue behind it, which can leave a second cycle that shared
// members with the first; so, still on the frozen table, it sweeps the whole
// graph and breaks what is left, one victim per remaining cycle. A cycle
// that runs through queue order only (a soft deadlock) may instead be broken
// by granting a waiter out of order (reorderLocked). It reports whether a
// cycle was broken.
func (m *Manager) resolve(cycle []deadlock.Edge, requester uint64) bool {
	m.lockAll()
	m.rescanRangesLocked() // range waiters' edges may lag point changes: make the graph exact
	edges, live := m.liveCycleLocked(cycle)
	if !live {
		m.graph.Lock()
		cycle = m.graph.FindCycleLocked(requester)
		if cycle == nil {
			cycle = m.graph.FindAnyCycleLocked()
		}
		m.graph.Unlock()
		if cycle != nil {
			edges, live = m.liveCycleLocked(cycle)
		}
	}
	var victims []*DeadlockError
	resolved := false
	for live {
		resolved = true
		if !m.reorderLocked(edges) {
			victim := deadlock.ChooseVictim(cycle, m.opts.Victim, m.closerLocked(cycle, requester))
			if derr := m.abortLocked(victim, edges); derr != nil {
				victims = append(victims, derr)
			}
		}
		m.graph.Lock()
		cycle = m.graph.FindAnyCycleLocked()
		m.graph.Unlock()
		live = false
		if cycle != nil {
			edges, live = m.liveCycleLocked(cycle)
		}
	}
	m.unlockAll()
	for _, derr := range victims {
		m.stats.deadlocks.Add(1)
		if m.opts.OnDeadlock != nil {
			m.opts.OnDeadlock(derr)
		}
	}
	return resolved
}

// reorderLocked breaks a soft deadlock without an abort, as PostgreSQL does
// by rearranging wait queues: a cycle member whose only blockers are
// requests queued ahead of it (all its edges are soft) is compatible with
// every holder, so it is granted out of queue order. That cannot create a
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
		allSoft := true
		for _, le := range m.liveEdgesLocked(r) {
			allSoft = allSoft && le.Soft
		}
		if !allSoft {
			continue
		}
		m.stats.reorders.Add(1)
		if h := m.hooks.resolved; h != nil {
			h("reorder", r.txn)
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
			m.refreshHeadLocked(h, h.waiters.head)
		} else {
			h.recomputeLastX()
		}
		m.handOff(r)
		m.rescanRangesLocked()
		return true
	}
	return false
}

// closerLocked names the member whose wait closed cycle: requester if it is
// in the cycle, else the member that started waiting last.
func (m *Manager) closerLocked(cycle []deadlock.Edge, requester uint64) uint64 {
	var closer, latest uint64
	m.graph.Lock()
	defer m.graph.Unlock()
	for _, e := range cycle {
		if e.Waiter == requester {
			return requester
		}
		if r, ok := m.graph.WaitingOnLocked(e.Waiter); ok && r.seq >= latest {
			latest, closer = r.seq, e.Waiter
		}
	}
	return closer
}

// liveCycleLocked re-checks every edge of cycle against the lock table: the
// waiter still waits on the request the graph names, and the holder is still
// one of its blockers (recomputed from the queues, not read from the graph).
// It returns the edges described for a DeadlockError. Needs every shard.
func (m *Manager) liveCycleLocked(cycle []deadlock.Edge) ([]WaitEdge, bool) {
	if !deadlock.IsCycle(cycle) {
		return nil, false
	}
	reqs := make([]*request, len(cycle))
	m.graph.Lock()
	for i, e := range cycle {
		reqs[i], _ = m.graph.WaitingOnLocked(e.Waiter)
	}
	m.graph.Unlock()
	out := make([]WaitEdge, len(cycle))
	for i, e := range cycle {
		r := reqs[i]
		if r == nil || r.state != stateWaiting {
			return nil, false
		}
		blocker, soft := false, false
		for _, le := range m.liveEdgesLocked(r) {
			if le.Holder == e.Holder {
				blocker, soft = true, le.Soft
				break
			}
		}
		if !blocker {
			return nil, false
		}
		key, end, isRange := r.target()
		out[i] = WaitEdge{Waiter: e.Waiter, Holder: e.Holder, Key: bytes.Clone(key), End: bytes.Clone(end),
			Range: isRange, Mode: r.mode, Soft: soft}
	}
	return out, true
}

// liveEdgesLocked recomputes waiting request r's edges from the lock table,
// deduplicated by holder (hard wins). Needs every shard.
func (m *Manager) liveEdgesLocked(r *request) []deadlock.Edge {
	var raw []deadlock.Edge
	if r.isRange {
		raw = m.rangeEdgesLocked(r, nil)
	} else {
		raw = m.pointEdgesLocked(r, r.head.nearestConflicting(r.mode, r.upgrade, r), nil)
	}
	out := raw[:0]
	for _, e := range raw {
		dup := false
		for i := range out {
			if out[i].Holder == e.Holder {
				out[i].Soft = out[i].Soft && e.Soft
				dup = true
			}
		}
		if !dup {
			out = append(out, e)
		}
	}
	return out
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
		h("victim", victim)
	}
	if r.isRange {
		m.removeRangeWaiterLocked(r)
		m.rescanAllLocked()
	} else {
		m.removePointWaiterLocked(r)
		m.rescanRangesLocked()
	}
	close(r.ready)
	return derr
}
