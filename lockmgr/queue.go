package lockmgr

import (
	"bytes"
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

// lookupLocked finds the lock head of key.
func (sh *shard) lookupLocked(h uint64, key []byte) *lockHead {
	for x := sh.mu.heads[h]; x != nil; x = x.hnext {
		if bytes.Equal(x.key, key) {
			return x
		}
	}
	return nil
}

// newHeadLocked creates (or recycles) the head of key and links it in.
func (sh *shard) newHeadLocked(h uint64, key []byte) *lockHead {
	var x *lockHead
	if n := len(sh.mu.freeHeads); n > 0 {
		x = sh.mu.freeHeads[n-1]
		sh.mu.freeHeads = sh.mu.freeHeads[:n-1]
	} else {
		x = &lockHead{sh: sh}
	}
	x.hash = h
	x.key = append(x.key[:0], key...)
	x.hnext = sh.mu.heads[h]
	sh.mu.heads[h] = x
	if n := len(sh.mu.heads); n > sh.mu.peak {
		sh.mu.peak = n
	}
	return x
}

// maybeFreeHeadLocked unlinks and recycles x once nobody holds or waits.
func (sh *shard) maybeFreeHeadLocked(x *lockHead) {
	if x.holders.head != nil || x.waiters.head != nil {
		return
	}
	p := sh.mu.heads[x.hash]
	if p == x {
		if x.hnext == nil {
			delete(sh.mu.heads, x.hash)
		} else {
			sh.mu.heads[x.hash] = x.hnext
		}
	} else {
		for p.hnext != x {
			p = p.hnext
		}
		p.hnext = x.hnext
	}
	x.hnext = nil
	if cap(x.key) > maxKeptKey {
		x.key = nil // a peak of large keys must not stay pinned by the free list
	}
	if len(sh.mu.freeHeads) < maxFree {
		sh.mu.freeHeads = append(sh.mu.freeHeads, x)
	}
	if len(sh.mu.heads) == 0 && sh.mu.peak > shrinkAbove {
		sh.mu.heads, sh.mu.peak = make(map[uint64]*lockHead), 0 // a Go map keeps its largest buckets
	}
}

func (sh *shard) newRequestLocked(txn uint64, mode Mode) *request {
	var r *request
	if n := len(sh.mu.freeReqs); n > 0 {
		r = sh.mu.freeReqs[n-1]
		sh.mu.freeReqs = sh.mu.freeReqs[:n-1]
	} else {
		r = new(request)
	}
	r.txn, r.mode, r.pooled = txn, mode, true
	return r
}

// freeRequestLocked recycles a released point holder that was granted on
// the fast path. A request that waited is left to the garbage collector: its
// waiter goroutine may still be reading it, even after a (misplaced)
// concurrent ReleaseAll of its transaction.
func (sh *shard) freeRequestLocked(r *request) {
	if !r.pooled {
		return
	}
	*r = request{}
	if len(sh.mu.freeReqs) < maxFree {
		sh.mu.freeReqs = append(sh.mu.freeReqs, r)
	}
}

// keepScratchLocked stores refreshHeadLocked's scratch slices for the next
// use, unless a burst made them large.
func (sh *shard) keepScratchLocked(edges []deadlock.Edge, waits []waitUpdate, grants []*request) {
	sh.mu.edges, sh.mu.waits, sh.mu.grants = nil, nil, nil
	if cap(edges) <= maxScratch {
		sh.mu.edges = edges[:0]
	}
	if cap(waits) <= maxScratch {
		sh.mu.waits = waits[:0]
	}
	if cap(grants) <= maxScratch {
		sh.mu.grants = grants[:0]
	}
}
