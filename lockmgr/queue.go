package lockmgr

import (
	"context"
	"math"
	"time"

	"github.com/txkv/txkv/deadlock"
)

type reqState uint8

const (
	stateNew       reqState = iota // being evaluated, not in any table yet
	stateWaiting                   // queued; ready not yet closed
	stateGranted                   // holds the lock (hand-off done by the granter)
	stateAborted                   // chosen as deadlock victim or ended by Close; err says why
	stateCancelled                 // removed by its own waiter after timeout or ctx
)

// request is one transaction's lock (granted) or lock request (waiting) on
// one target. Point requests hang off their key's lockHead; range requests
// live in the range table.
type request struct {
	txn     uint64
	mode    Mode
	head    *lockHead // point requests: the key's head (target = head.key)
	key     []byte    // range requests: own copy of [key, end)
	end     []byte
	isRange bool
	upgrade bool // the txn already holds a lock overlapping the target (see passesLocked)
	merged  bool // a granted upgrade folded into the txn's existing holder
	pooled  bool // from the shard's free list: recycled at release
	state   reqState
	seq     uint64    // arrival order of waiters; math.MaxUint64 for a probe not yet queued
	pos     uint64    // place in queue order: seq<<posShift, lowered when moved ahead (ties: seq)
	since   time.Time // grant time for holders, enqueue time for waiters
	queued  time.Time // enqueue time of a waiter; never changes afterwards
	ready   chan struct{}
	err     error // set with stateAborted

	// prevX, for a waiting point request: the nearest exclusive waiter
	// ahead of it in its key's queue, nil if none. Every change of the
	// queue keeps it exact (refreshHeadLocked), so edges are found in O(1).
	prevX *request

	prev, next *request // in lockHead.holders or lockHead.waiters
	txnNext    *request // in txnState.held
}

// posShift spaces the queue positions of arrivals, leaving room below
// each for requests moved just ahead of it (rearrangeLocked).
const posShift = 20

// before reports whether r comes before o in queue order, upgrades aside:
// by position, then arrival.
func (r *request) before(o *request) bool {
	if r.pos != o.pos {
		return r.pos < o.pos
	}
	return r.seq < o.seq
}

// target returns the request's key range.
func (r *request) target() (key, end []byte, isRange bool) {
	if r.isRange {
		return r.key, r.end, true
	}
	return r.head.key, nil, false
}

// reqList is an intrusive doubly linked list of requests.
type reqList struct {
	head, tail *request
}

func (l *reqList) pushBack(r *request) { l.insertAfter(l.tail, r) }

// insertAfter puts r after at (at nil: at the front).
func (l *reqList) insertAfter(at, r *request) {
	if at == nil {
		r.prev, r.next = nil, l.head
		if l.head != nil {
			l.head.prev = r
		} else {
			l.tail = r
		}
		l.head = r
		return
	}
	r.prev, r.next = at, at.next
	if at.next != nil {
		at.next.prev = r
	} else {
		l.tail = r
	}
	at.next = r
}

func (l *reqList) remove(r *request) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		l.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		l.tail = r.prev
	}
	r.prev, r.next = nil, nil
}

// lockHead is the lock state of one key:
//
//	holders: granted requests, any order (compatible with each other)
//	waiters: FIFO; upgrades (txns already holding the key) at the front
type lockHead struct {
	hash    uint64
	key     []byte
	sh      *shard
	hnext   *lockHead // next head with the same hash
	holders reqList
	waiters reqList
}

func (h *lockHead) holderOf(txn uint64) *request {
	for r := h.holders.head; r != nil; r = r.next {
		if r.txn == txn {
			return r
		}
	}
	return nil
}

// queueTail returns the waiter a new request queues behind: the last
// upgrade for an upgrade (upgrades go ahead of every other waiter), else
// the last waiter. nil means the front.
func (h *lockHead) queueTail(upgrade bool) *request {
	if !upgrade {
		return h.waiters.tail
	}
	var last *request
	for w := h.waiters.head; w != nil && w.upgrade; w = w.next {
		last = w
	}
	return last
}

// insertSortedLocked links waiting w into h's queue at its place in queue
// order: upgrades first, then by position.
func (h *lockHead) insertSortedLocked(w *request) {
	var at *request
	for x := h.waiters.head; x != nil && queuedAhead(x, w); x = x.next {
		at = x
	}
	h.waiters.insertAfter(at, w)
}

// queuedAhead reports whether x is ahead of w in the queue of one key.
func queuedAhead(x, w *request) bool {
	if x.upgrade != w.upgrade {
		return x.upgrade
	}
	return x.before(w)
}

// nearestX returns p if it is exclusive, else the nearest exclusive waiter
// ahead of p: the prevX of a request queued right behind p.
func nearestX(p *request) *request {
	if p == nil || p.mode.conflictsWithAll() {
		return p
	}
	return p.prevX
}

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

// grantNewPointLocked makes txn a holder of h.
func (m *Manager) grantNewPointLocked(sh *shard, h *lockHead, txn uint64, mode Mode) {
	r := sh.newRequestLocked(txn, mode)
	r.head, r.state = h, stateGranted // no clock read: Since stays zero (see LockInfo)
	h.holders.pushBack(r)
	m.addHeld(r)
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

// afterEnqueue runs the immediate deadlock search from a new waiter.
func (m *Manager) afterEnqueue(txn uint64) {
	if m.opts.Detection == deadlock.Immediate {
		m.detect(txn)
	}
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

// removePointWaiterLocked takes waiting r out of its queue and the graph
// (timeout, cancel, deadlock victim, Close) and re-examines the waiters that
// were behind it.
func (m *Manager) removePointWaiterLocked(r *request) {
	h := r.head
	next := r.next
	h.waiters.remove(r)
	r.prevX = nil
	m.graph.Remove(r.txn)
	if next != nil {
		m.refreshHeadLocked(h, next, false)
	}
	h.sh.maybeFreeHeadLocked(h)
}
