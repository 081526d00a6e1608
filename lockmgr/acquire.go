package lockmgr

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// Acquire locks t in mode for txn.
//
// Re-entrant: if txn already holds t (or a range covering a point t) in
// mode or a stronger one, it returns nil at once and adds nothing.
//
// Otherwise the request is granted at once only if it is compatible with
// every holder and no conflicting request is queued ahead of it (FIFO, no
// barging). The one exception (PostgreSQL's): a request goes ahead of the
// waiters whose targets overlap a lock txn already holds - an S->X upgrade
// of a key goes ahead of that key's queue and needs only the other holders'
// consent, while a range request goes ahead only where it meets txn's
// locks, not of waiters elsewhere in the range.
//
// If the request cannot be granted: NoWait and SkipLocked return a
// *LockError matching ErrLockNotAvailable without queueing; Block waits per
// timeout (see Forever for the one convention): > 0 at most that long; 0
// not at all — a *LockError matching ErrLockTimeout at once, never queued;
// Forever (any negative) with no timer (ctx still applies). A wait ends with nil (the lock is
// held: grants are handed off atomically), a *LockError matching
// ErrLockTimeout, ctx.Err(), a *DeadlockError when txn is chosen as a
// deadlock victim, or ErrClosed. On any error - and if Acquire panics (an
// OnDeadlock callback) - the request leaves no trace; locks txn already held
// stay held. A transaction waits for at most one request at a time
// (ErrAlreadyWaiting).
func (m *Manager) Acquire(ctx context.Context, txn uint64, t Target, mode Mode, p WaitPolicy, timeout time.Duration) error {
	if mode >= numModes {
		return fmt.Errorf("%w: unknown mode %d", ErrInvalidRequest, mode)
	}
	if !p.valid() {
		return fmt.Errorf("%w: unknown wait policy %d", ErrInvalidRequest, p)
	}
	if err := t.validate(); err != nil {
		return err
	}
	if m.closed.Load() {
		return ErrClosed
	}
	if p == Block && timeout == 0 {
		p = noWaitTimeout // "wait at most 0": refuse, do not queue
	}
	if t.Range {
		return m.acquireRange(ctx, txn, t, mode, p, timeout)
	}
	return m.acquirePoint(ctx, txn, t.Key, mode, p, timeout)
}

// acquirePoint is Acquire of one key, under the key's shard alone: the
// fast path (nobody there, no range lock), re-entry, then the grant
// decision (probeEdgesLocked: no edges, grant) and, when the request must
// wait, a refusal (NoWait, SkipLocked, a timeout of 0) or enqueue and block.
func (m *Manager) acquirePoint(ctx context.Context, txn uint64, key []byte, mode Mode, p WaitPolicy, timeout time.Duration) error {
	hash := hashKey(m.seed, key)
	sh := m.shardFor(hash)
	sh.mu.Lock()
	h := sh.lookupLocked(hash, key)
	if h == nil && len(m.rt.reqs) == 0 {
		// Fast path: nobody holds or wants key and no range lock exists.
		h = sh.newHeadLocked(hash, key)
		m.grantNewPointLocked(sh, h, txn, mode)
		sh.mu.Unlock()
		return nil
	}
	if h == nil {
		h = sh.newHeadLocked(hash, key)
	}
	mine := h.holderOf(txn)
	if (mine != nil && mine.mode.covers(mode)) || m.rangeCoversLocked(txn, key, nil, false, mode) {
		sh.maybeFreeHeadLocked(h)
		sh.mu.Unlock()
		return nil // re-entrant
	}
	probe := request{txn: txn, mode: mode, head: h, seq: math.MaxUint64, pos: math.MaxUint64,
		upgrade: mine != nil || m.rangeTouchesLocked(txn, key, nil, false)}
	prev := h.queueTail(probe.upgrade)
	probe.prevX = nearestX(prev)
	edges := m.probeEdgesLocked(&probe, prev, p)
	if len(edges) == 0 {
		rescan := m.grantProbeLocked(&probe, mine)
		sh.mu.Unlock()
		if rescan {
			m.rescanRanges()
		}
		return nil
	}
	if p != Block {
		err := m.refusalLocked(p, &probe, edges)
		sh.maybeFreeHeadLocked(h)
		sh.mu.Unlock()
		return m.refused(p, err)
	}
	if err := ctx.Err(); err != nil {
		sh.maybeFreeHeadLocked(h)
		sh.mu.Unlock()
		return err
	}
	r, rescan := m.enqueuePointLocked(&probe, prev, edges)
	var note *waitNote
	if r != nil {
		note = m.noteWaitLocked(r)
	}
	sh.mu.Unlock()
	if r == nil {
		return ErrAlreadyWaiting
	}
	if rescan {
		m.rescanRanges()
	}
	return m.block(ctx, r, timeout, note)
}

// grantNewPointLocked makes txn a holder of h.
func (m *Manager) grantNewPointLocked(sh *shard, h *lockHead, txn uint64, mode Mode) {
	r := sh.newRequestLocked(txn, mode)
	r.head, r.state = h, stateGranted // no clock read: Since stays zero (see LockInfo)
	h.holders.pushBack(r)
	m.addHeld(r)
}

// probeEdgesLocked computes, into the shard's scratch, the edges of a
// request about to queue behind prev. Either kind is empty exactly when
// the request is grantable: a wait needs only the graph's edges, a refusal
// under policy p names every blocker.
func (m *Manager) probeEdgesLocked(probe, prev *request, p WaitPolicy) []deadlock.Edge {
	sh := probe.head.sh
	var edges []deadlock.Edge
	if p == Block {
		edges = m.pointEdgesLocked(probe, prev, sh.mu.edges[:0])
	} else {
		edges = m.pointBlockersLocked(probe, prev, sh.mu.edges[:0])
	}
	sh.mu.edges = edges[:0]
	return edges
}

// pointEdgesLocked appends the wait-for edges of point request w, queued
// right behind prev in its key's queue (w.prevX == nearestX(prev)):
//
//   - to the conflicting requests queued ahead of it, back to the nearest
//     exclusive one (queueEdgesLocked);
//   - only if no exclusive request is queued ahead of it: hard edges to the
//     other transactions holding a conflicting lock on the key or a granted
//     range covering it;
//   - soft edges to conflicting range requests queued ahead of it.
//
// No edges means w is grantable. Every blocker left out stays reachable
// through the edges kept (see the package doc, "Edges").
func (m *Manager) pointEdgesLocked(w, prev *request, dst []deadlock.Edge) []deadlock.Edge {
	dst = m.queueEdgesLocked(w, prev, dst)
	front := w.prevX == nil
	if front {
		dst = m.holderEdgesLocked(w, dst)
	}
	if len(m.rt.reqs) > 0 {
		dst = m.rangeEdgesOfPointLocked(w, front, dst)
	}
	return dst
}

// pointBlockersLocked is pointEdgesLocked with every conflicting holder,
// for the error that names whom a refused or timed-out request waited for.
func (m *Manager) pointBlockersLocked(w, prev *request, dst []deadlock.Edge) []deadlock.Edge {
	dst = m.holderEdgesLocked(w, dst)
	dst = m.queueEdgesLocked(w, prev, dst)
	if len(m.rt.reqs) > 0 {
		dst = m.rangeEdgesOfPointLocked(w, true, dst)
	}
	return dst
}

// queueEdgesLocked appends w's edges to the point requests queued ahead of
// it that it conflicts with, prev being the last request ahead: a shared
// request waits for the nearest exclusive one (w.prevX); an exclusive
// request for every request back to and including the nearest exclusive
// one.
func (m *Manager) queueEdgesLocked(w, prev *request, dst []deadlock.Edge) []deadlock.Edge {
	if !w.mode.conflictsWithAll() {
		if w.prevX != nil {
			dst = append(dst, m.queueEdgeLocked(w, w.prevX))
		}
		return dst
	}
	for x := prev; x != nil; x = x.prev {
		dst = append(dst, m.queueEdgeLocked(w, x))
		if x.mode.conflictsWithAll() {
			break
		}
	}
	return dst
}

// queueEdgeLocked is the edge from w to x, queued ahead of it: hard if x's
// transaction also holds a lock on the key that conflicts with w (x is an
// upgrade), soft otherwise.
func (m *Manager) queueEdgeLocked(w, x *request) deadlock.Edge {
	hard := x.upgrade && m.holdsConflictingLocked(x.txn, w.head, w.mode)
	return deadlock.Edge{Waiter: w.txn, Holder: x.txn, Soft: !hard}
}

// holdsConflictingLocked reports whether txn holds a lock conflicting with
// mode on h's key, itself or through a granted range covering it.
func (m *Manager) holdsConflictingLocked(txn uint64, h *lockHead, mode Mode) bool {
	if r := h.holderOf(txn); r != nil && Conflicts(r.mode, mode) {
		return true
	}
	for _, x := range m.rt.reqs {
		if x.txn == txn && x.state == stateGranted && Conflicts(x.mode, mode) && inRange(h.key, x.key, x.end) {
			return true
		}
	}
	return false
}

// holderEdgesLocked appends hard edges from point request w to the other
// transactions holding conflicting locks on its key.
func (m *Manager) holderEdgesLocked(w *request, dst []deadlock.Edge) []deadlock.Edge {
	for x := w.head.holders.head; x != nil; x = x.next {
		if x.txn != w.txn && Conflicts(x.mode, w.mode) {
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn})
		}
	}
	return dst
}

// grantProbeLocked grants probe at once: an in-place upgrade of mine, or a
// new holder. An upgrade may have gone ahead of queued requests; those that
// conflict with it now wait for it as a holder, so their edges change. It
// reports whether range waiters must be re-examined (the probe went ahead
// of one).
func (m *Manager) grantProbeLocked(probe, mine *request) bool {
	h := probe.head
	rescan := m.rt.waiting > 0 && m.passedRangeWaiterLocked(probe)
	if mine != nil {
		mine.mode = probe.mode
	} else {
		m.grantNewPointLocked(h.sh, h, probe.txn, probe.mode)
	}
	if probe.upgrade && h.waiters.head != nil {
		m.refreshHeadLocked(h, h.waiters.head, false)
	}
	return rescan
}

// refusalLocked is the error of request w that policy p does not let wait,
// from the edges w would have had (holders, and requests queued ahead).
func (m *Manager) refusalLocked(p WaitPolicy, w *request, blockers []deadlock.Edge) *LockError {
	key, end, isRange := w.target()
	err := ErrLockNotAvailable
	if p == noWaitTimeout {
		err = ErrLockTimeout
	}
	return newLockError(err, w.txn, Target{Key: key, End: end, Range: isRange}, w.mode, blockers, 0)
}

// refused counts a refusal and returns its error. Called with no lock held
// (labels live under the transaction shards' mutexes).
func (m *Manager) refused(p WaitPolicy, err *LockError) error {
	switch p {
	case noWaitTimeout:
		m.stats.timeouts.Add(1)
	case SkipLocked:
		m.stats.skipped.Add(1)
		fallthrough
	default:
		m.stats.notAvailable.Add(1)
	}
	return m.labeled(err)
}

// labeled adds the labels of the transactions a LockError names. Called
// with no lock held.
func (m *Manager) labeled(e *LockError) *LockError {
	add := func(id uint64) {
		if l := m.label(id); l != "" {
			if e.Labels == nil {
				e.Labels = make(map[uint64]string)
			}
			e.Labels[id] = l
		}
	}
	add(e.Txn)
	for _, id := range e.Holders {
		add(id)
	}
	for _, id := range e.Queued {
		add(id)
	}
	return e
}

// enqueuePointLocked queues a waiting copy of probe behind prev, with the
// out-edges computed for the probe. It returns nil if the transaction
// already waits for something else, and whether range waiters must be
// re-examined (the request went ahead of one).
func (m *Manager) enqueuePointLocked(probe, prev *request, edges []deadlock.Edge) (*request, bool) {
	h := probe.head
	r := &request{txn: probe.txn, mode: probe.mode, head: h, upgrade: probe.upgrade, prevX: probe.prevX,
		state: stateWaiting, ready: make(chan struct{})}
	r.seq = m.seq.Add(1)
	r.pos = r.seq << posShift
	r.since = time.Now()
	r.queued = r.since
	if !m.registerWait(r, edges) {
		h.sh.maybeFreeHeadLocked(h)
		return nil, false
	}
	h.waiters.insertAfter(prev, r)
	if r.next != nil {
		// An upgrade went ahead of waiters; those that conflict with it gain
		// an edge to txn. Cycles through those edges run through txn, so the
		// immediate search still finds them once the edges are in.
		m.refreshHeadLocked(h, r.next, false)
	}
	// Counted before the shard unlocks: whoever sees the request queued
	// (Locks, WaitingOn) sees it in Stats().Waits too. Counted after, a
	// test reading Waits once it saw the waiter could see the count move
	// later, while nothing new waited.
	m.stats.waits.Add(1)
	return r, m.rt.waiting > 0 && m.passedRangeWaiterLocked(r)
}

// registerWait adds r's node and out-edges to the wait-for graph. It fails
// if the transaction already waits for something else.
func (m *Manager) registerWait(r *request, edges []deadlock.Edge) bool {
	m.graph.Lock()
	defer m.graph.Unlock()
	if _, busy := m.graph.WaitingOnLocked(r.txn); busy {
		return false
	}
	m.graph.SetWaitsLocked(r.txn, r, edges)
	return true
}

// waitNote is what OnWait is told of a request that queued, copied under the
// lock that queued it: once the lock is released, another goroutine may end
// the request (a deadlock victim) and recycle its key's head.
type waitNote struct {
	key, end []byte
	isRange  bool
}

// noteWaitLocked copies the target of queued request r for OnWait, if set.
func (m *Manager) noteWaitLocked(r *request) *waitNote {
	if m.opts.OnWait == nil {
		return nil
	}
	key, end, isRange := r.target()
	return &waitNote{key: bytes.Clone(key), end: bytes.Clone(end), isRange: isRange}
}
