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
	upgrade bool // the txn already holds a lock on (part of) the target: queued ahead
	merged  bool // a granted upgrade folded into the txn's existing holder
	pooled  bool // from the shard's free list: recycled at release
	state   reqState
	seq     uint64    // arrival order of waiters; math.MaxUint64 for a probe not yet queued
	since   time.Time // grant time for holders, enqueue time for waiters
	queued  time.Time // enqueue time of a waiter; never changes afterwards
	ready   chan struct{}
	err     error // set with stateAborted

	prev, next *request // in lockHead.holders or lockHead.waiters
	txnNext    *request // in txnState.held
}

// target returns the request's key range.
func (r *request) target() (key, end []byte, isRange bool) {
	if r.isRange {
		return r.key, r.end, true
	}
	return r.head.key, nil, false
}

// ahead reports whether waiting request a is queued ahead of b: upgrades
// first, then arrival order. It is the one queue order shared by point
// queues and the range table.
func ahead(a, b *request) bool {
	if a.upgrade != b.upgrade {
		return a.upgrade
	}
	return a.seq < b.seq
}

// reqList is an intrusive doubly linked list of requests.
type reqList struct {
	head, tail *request
}

func (l *reqList) pushBack(r *request) {
	r.prev, r.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = r
	} else {
		l.head = r
	}
	l.tail = r
}

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
	lastX   *request // last waiting Exclusive request: the nearest conflicting waiter of a new S request
}

func (h *lockHead) holderOf(txn uint64) *request {
	for r := h.holders.head; r != nil; r = r.next {
		if r.txn == txn {
			return r
		}
	}
	return nil
}

// nearestConflicting returns the last waiter (in queue order) before `before`
// (nil: the end of the queue) whose mode conflicts with mode; for an upgrade
// only earlier upgrades count.
func (h *lockHead) nearestConflicting(mode Mode, upgrade bool, before *request) *request {
	if upgrade {
		var last *request
		for w := h.waiters.head; w != nil && w != before && w.upgrade; w = w.next {
			if Conflicts(w.mode, mode) {
				last = w
			}
		}
		return last
	}
	if before == nil {
		if Conflicts(Shared, mode) {
			return h.waiters.tail // everything conflicts with mode
		}
		return h.lastX
	}
	for w := before.prev; w != nil; w = w.prev {
		if Conflicts(w.mode, mode) {
			return w
		}
	}
	return nil
}

// recomputeLastX restores the lastX cache after a waiter left.
func (h *lockHead) recomputeLastX() {
	h.lastX = nil
	for w := h.waiters.tail; w != nil; w = w.prev {
		if w.mode == Exclusive {
			h.lastX = w
			return
		}
	}
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
	probe := request{txn: txn, mode: mode, head: h, seq: math.MaxUint64,
		upgrade: mine != nil || m.rangeTouchesLocked(txn, key, nil, false)}
	nearest := h.nearestConflicting(mode, probe.upgrade, nil)
	edges := m.pointEdgesLocked(&probe, nearest, sh.mu.edges[:0])
	sh.mu.edges = edges[:0]
	if len(edges) == 0 {
		if mine != nil {
			mine.mode = mode // upgrade in place
		} else {
			m.grantNewPointLocked(sh, h, txn, mode)
		}
		rescan := false
		if probe.upgrade {
			// Granted ahead of queued requests: those that conflict now
			// wait for txn as a holder, so their edges change.
			if h.waiters.head != nil {
				m.refreshHeadLocked(h, h.waiters.head)
			}
			rescan = m.rt.waiting > 0
		}
		sh.mu.Unlock()
		if rescan {
			m.rescanRanges()
		}
		return nil
	}
	if p != Block {
		err := newLockError(ErrLockNotAvailable, txn, Point(key), mode, edges, 0)
		sh.maybeFreeHeadLocked(h)
		sh.mu.Unlock()
		return m.notAvailable(p, err)
	}
	if err := ctx.Err(); err != nil {
		sh.maybeFreeHeadLocked(h)
		sh.mu.Unlock()
		return err
	}
	r := &request{txn: txn, mode: mode, head: h, upgrade: probe.upgrade, state: stateWaiting,
		seq: m.seq.Add(1), ready: make(chan struct{})}
	r.since = time.Now()
	r.queued = r.since
	if !m.registerWait(r, edges) {
		sh.maybeFreeHeadLocked(h)
		sh.mu.Unlock()
		return ErrAlreadyWaiting
	}
	if r.upgrade {
		var at *request
		for w := h.waiters.head; w != nil && w.upgrade; w = w.next {
			at = w
		}
		h.waiters.insertAfter(at, r)
	} else {
		h.waiters.pushBack(r)
	}
	if r.mode == Exclusive {
		h.recomputeLastX()
	}
	rescan := false
	if r.upgrade {
		// The upgrade jumped ahead of waiters that may conflict with it: they
		// gain edges to txn. Cycles through those edges run through txn, so
		// the search below still finds them once the edges are in.
		if r.next != nil {
			m.refreshHeadLocked(h, r.next)
		}
		rescan = m.rt.waiting > 0
	}
	// Counted before the shard unlocks: whoever sees the request queued
	// (Locks, WaitingOn) sees it in Stats().Waits too. Counted after, a
	// test reading Waits once it saw the waiter could see the count move
	// later, while nothing new waited.
	m.stats.waits.Add(1)
	sh.mu.Unlock()
	if rescan {
		m.rescanRanges()
	}
	m.afterEnqueue(txn)
	return m.waitFor(ctx, r, timeout)
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

// pointEdgesLocked appends the wait-for edges of point request w: hard edges
// to other transactions holding conflicting locks on the key (or on a range
// covering it), a soft edge to nearest (the nearest conflicting waiter ahead
// in the key's queue) and soft edges to conflicting range requests queued
// ahead. No edges means w is grantable.
func (m *Manager) pointEdgesLocked(w *request, nearest *request, dst []deadlock.Edge) []deadlock.Edge {
	for x := w.head.holders.head; x != nil; x = x.next {
		if x.txn != w.txn && Conflicts(x.mode, w.mode) {
			dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: x.txn})
		}
	}
	if nearest != nil && nearest.txn != w.txn {
		dst = append(dst, deadlock.Edge{Waiter: w.txn, Holder: nearest.txn, Soft: true})
	}
	if len(m.rt.reqs) > 0 {
		dst = m.rangeEdgesOfPointLocked(w, dst)
	}
	return dst
}

// refreshHeadLocked re-examines h's queue from waiter `from` on, after a
// holder or a waiter left: it grants, in queue order, every waiter that is
// compatible with the holders and with every earlier still-waiting request,
// and recomputes the wait-for edges of the others, in one graph update.
// Waiters before `from` are unaffected by the change and are skipped.
func (m *Manager) refreshHeadLocked(h *lockHead, from *request) {
	sh := h.sh
	edges, waits, grants := sh.mu.edges[:0], sh.mu.waits[:0], sh.mu.grants[:0]
	// lastAny and lastX: the latest still-waiting requests seen, of any mode
	// and of mode X, seeded with those before `from`.
	var lastAny, lastX *request
	if from != nil {
		lastAny = from.prev
		for w := from.prev; w != nil; w = w.prev {
			if w.mode == Exclusive {
				lastX = w
				break
			}
		}
	}
	for w := from; w != nil; {
		next := w.next
		var nearest *request
		switch {
		case w.upgrade:
			nearest = h.nearestConflicting(w.mode, true, w)
		case Conflicts(Shared, w.mode):
			nearest = lastAny
		case Conflicts(Exclusive, w.mode):
			nearest = lastX
		}
		lo := len(edges)
		edges = m.pointEdgesLocked(w, nearest, edges)
		if len(edges) == lo {
			m.grantWaiterLocked(h, w)
			grants = append(grants, w)
		} else {
			waits = append(waits, waitUpdate{r: w, lo: lo, hi: len(edges)})
			lastAny = w
			if w.mode == Exclusive {
				lastX = w
			}
		}
		w = next
	}
	h.recomputeLastX()
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
	clear(grants)
	sh.mu.edges, sh.mu.waits, sh.mu.grants = edges[:0], waits[:0], grants[:0]
}

// grantWaiterLocked moves waiting w to h's holders (or folds an upgrade into
// the transaction's existing holder). The caller updates the graph and then
// calls handOff.
func (m *Manager) grantWaiterLocked(h *lockHead, w *request) {
	h.waiters.remove(w)
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
	m.graph.Remove(r.txn)
	if next != nil {
		m.refreshHeadLocked(h, next)
	} else {
		h.recomputeLastX()
	}
	h.sh.maybeFreeHeadLocked(h)
}
