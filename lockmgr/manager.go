package lockmgr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// Options configures a Manager. A nil *Options means the defaults; the zero
// value of every field is its default.
type Options struct {
	// Detection is when deadlocks are searched for: deadlock.Immediate
	// (default), deadlock.Periodic or deadlock.Off (timeouts only).
	Detection deadlock.Mode
	// Interval is the periodic sweep interval (default 1s, PostgreSQL's
	// deadlock_timeout). Used only with deadlock.Periodic.
	Interval time.Duration
	// Victim chooses which member of a cycle is aborted: deadlock.Youngest
	// (default: the largest age, see SetAge; ties by the larger ID) or
	// deadlock.Requester.
	Victim deadlock.VictimPolicy
	// OnDeadlock, if set, is called once per victim, after the victim's
	// request was cancelled, with no lock manager mutex held, on the
	// goroutine that broke the cycle: the Acquire whose wait closed it
	// (Immediate) or the sweeper (Periodic). If it panics, that Acquire
	// withdraws its own request before the panic goes on, and the other
	// victims are still reported.
	OnDeadlock func(*DeadlockError)
	// OnWait, if set, is called when a request must wait (it was queued),
	// with no lock manager mutex held, on the waiting goroutine, before it
	// blocks: key and end are the target (end nil and !isRange: a point),
	// not to be retained. txkv counts hot keys with it. A panic in it
	// withdraws the request, as one in OnDeadlock does.
	OnWait func(key, end []byte, isRange bool)
	// Shards is the number of hash shards of the point-lock table, rounded
	// up to a power of two (default 64).
	Shards int
}

const (
	defaultInterval = time.Second
	defaultShards   = 64
	maxShards       = 1 << 16
	maxFree         = 256  // recycled heads and requests kept per shard
	maxKeptKey      = 256  // largest key buffer a recycled head keeps
	maxScratch      = 1024 // largest scratch slice a shard keeps between uses
	shrinkAbove     = 1024 // a shard's map is rebuilt once empty after a larger peak
)

// Validate reports the first invalid field. New replaces invalid fields by
// their defaults, so callers that want bad configuration rejected call
// Validate first.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	switch {
	case !o.Detection.Valid():
		return fmt.Errorf("%w: unknown deadlock detection mode %d", ErrInvalidRequest, o.Detection)
	case !o.Victim.Valid():
		return fmt.Errorf("%w: unknown victim policy %d", ErrInvalidRequest, o.Victim)
	case o.Interval < 0:
		return fmt.Errorf("%w: negative deadlock interval %v", ErrInvalidRequest, o.Interval)
	case o.Shards < 0 || o.Shards > maxShards:
		return fmt.Errorf("%w: shard count %d out of [0,%d]", ErrInvalidRequest, o.Shards, maxShards)
	}
	return nil
}

func (o *Options) withDefaults() Options {
	var c Options
	if o != nil {
		c = *o
	}
	if !c.Detection.Valid() {
		c.Detection = deadlock.Immediate
	}
	if !c.Victim.Valid() {
		c.Victim = deadlock.Youngest
	}
	if c.Interval <= 0 {
		c.Interval = defaultInterval
	}
	if c.Shards <= 0 || c.Shards > maxShards {
		c.Shards = defaultShards
	}
	c.Shards = 1 << bits.Len(uint(c.Shards-1))
	return c
}

// Manager is the lock table. It is safe for concurrent use.
//
// Lock order (never acquire leftwards while holding rightwards):
//
//	shard[0] -> shard[1] -> ... -> shard[n-1] -> txnShard[i] -> deadlock.Graph
//
// A point operation holds one shard. A range operation, a deadlock
// resolution and a snapshot hold every shard (lockAll), in index order.
type Manager struct {
	opts   Options
	seed   maphash.Seed
	shards []shard
	shift  uint // 64 - log2(len(shards)), for hashing into shards
	txns   []txnShard
	graph  *deadlock.Graph[*request]
	seq    atomic.Uint64 // arrival order of waiting requests (queue order across structures)

	// rt is the range-lock table. It is written only with every shard
	// locked and read with any one shard locked, so a point operation that
	// holds its shard sees a stable range table without a lock of its own.
	rt rangeTable

	closed  atomic.Bool
	done    chan struct{} // closed by Close: ends every wait
	sweeper *deadlock.Sweeper
	stats   stats
	hooks   hooks
}

// hooks lets in-package tests observe progress without sleeping.
type hooks struct {
	// waiting is called by Acquire after its request is queued and the
	// immediate deadlock search (if any) has run, just before it blocks.
	waiting func(txn uint64)
	// resolved is called, with every shard locked, each time a cycle is
	// broken: kind "victim" (txn aborted), "reorder" (txn granted out of
	// queue order) or "move" (txn's request moved just ahead of other's).
	resolved func(kind string, txn, other uint64)
	// refreshed is called, with the key's shard locked, after each
	// re-examination of a point queue with the number of waiters examined.
	refreshed func(examined int)
	// waited is called, with no lock held, when a wait has ended and its
	// outcome (err) is decided, before Acquire returns it.
	waited func(txn uint64, err error)
}

// shard holds the point locks whose key hashes to it.
type shard struct {
	// mu protects the point locks of this shard and, together with every
	// other shard's mu, the Manager's range table.
	mu struct {
		sync.Mutex
		heads     map[uint64]*lockHead // by key hash; collisions chain through hnext
		peak      int                  // most heads since the map was made
		freeHeads []*lockHead
		freeReqs  []*request
		// scratch for refreshHeadLocked, reused to keep waits cheap
		edges  []deadlock.Edge
		waits  []waitUpdate
		grants []*request
	}
	_ [64]byte // keep shards on separate cache lines
}

type waitUpdate struct {
	r      *request
	lo, hi int // r's edges are edges[lo:hi]
}

// txnShard holds per-transaction state for the transactions hashing to it.
type txnShard struct {
	// mu protects txns and free.
	mu struct {
		sync.Mutex
		txns map[uint64]*txnState
		free []*txnState
	}
	_ [64]byte
}

// txnState is what the manager remembers about a transaction between its
// first lock (or label, or age) and ReleaseAll.
type txnState struct {
	held   *request // granted requests, linked through request.txnNext
	label  string
	age    uint64 // see SetAge; meaningful if hasAge
	hasAge bool
}

// New returns a lock manager. nil opts means the defaults; invalid fields
// are replaced by defaults (see Options.Validate). With deadlock.Periodic it
// starts the sweeper goroutine; Close stops it.
func New(opts *Options) *Manager {
	o := opts.withDefaults()
	m := &Manager{
		opts:   o,
		seed:   maphash.MakeSeed(),
		shards: make([]shard, o.Shards),
		shift:  uint(64 - bits.Len(uint(o.Shards-1))),
		txns:   make([]txnShard, defaultShards),
		graph:  deadlock.NewGraph[*request](),
		done:   make(chan struct{}),
	}
	for i := range m.shards {
		m.shards[i].mu.heads = make(map[uint64]*lockHead)
	}
	for i := range m.txns {
		m.txns[i].mu.txns = make(map[uint64]*txnState)
	}
	if o.Detection == deadlock.Periodic {
		// The interval is positive after withDefaults, so this cannot fail.
		m.sweeper, _ = deadlock.StartSweeper(o.Interval, m.sweep)
	}
	return m
}

// Close ends every pending wait with ErrClosed, stops the periodic sweeper
// and waits for it. Later Acquire calls return ErrClosed; ReleaseAll and the
// introspection methods keep working. Close is idempotent.
func (m *Manager) Close() {
	if m.closed.Swap(true) {
		return
	}
	close(m.done)
	if m.sweeper != nil {
		m.sweeper.Stop()
	}
}

func (m *Manager) shardFor(h uint64) *shard {
	if m.shift == 64 {
		return &m.shards[0]
	}
	return &m.shards[h>>m.shift]
}

func (m *Manager) txnShardFor(txn uint64) *txnShard {
	return &m.txns[(txn*0x9E3779B97F4A7C15)>>(64-6)]
}

func (m *Manager) lockAll() {
	for i := range m.shards {
		m.shards[i].mu.Lock()
	}
}

func (m *Manager) unlockAll() {
	for i := len(m.shards) - 1; i >= 0; i-- {
		m.shards[i].mu.Unlock()
	}
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

// addHeld records a granted request in its transaction's held list.
func (m *Manager) addHeld(r *request) {
	ts := m.txnShardFor(r.txn)
	ts.mu.Lock()
	st := ts.stateLocked(r.txn)
	r.txnNext = st.held
	st.held = r
	ts.mu.Unlock()
}

// stateLocked returns txn's state, creating it if needed.
func (ts *txnShard) stateLocked(txn uint64) *txnState {
	st := ts.mu.txns[txn]
	if st == nil {
		if n := len(ts.mu.free); n > 0 {
			st = ts.mu.free[n-1]
			ts.mu.free = ts.mu.free[:n-1]
		} else {
			st = new(txnState)
		}
		ts.mu.txns[txn] = st
	}
	return st
}

// label returns txn's label ("" if none).
func (m *Manager) label(txn uint64) string {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st := ts.mu.txns[txn]; st != nil {
		return st.label
	}
	return ""
}

// SetLabel attaches a label to txn, shown by Locks and in deadlock reports.
// It is forgotten at ReleaseAll.
func (m *Manager) SetLabel(txn uint64, label string) {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	ts.stateLocked(txn).label = label
	ts.mu.Unlock()
}

// SetAge gives txn an age for choosing deadlock victims: with the Youngest
// policy the victim is the member of the cycle with the largest age (ties:
// the larger ID). Smaller is older. A transaction without an age is as old
// as its ID. A caller that retries an aborted transaction under a new ID
// passes the first attempt's ID (or start) as the age of every attempt, so
// a retry is not the youngest again each round and cannot lose forever.
// The age is forgotten at ReleaseAll.
func (m *Manager) SetAge(txn, age uint64) {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	st := ts.stateLocked(txn)
	st.age, st.hasAge = age, true
	ts.mu.Unlock()
}

// age returns txn's age: the one set by SetAge, else its ID.
func (m *Manager) age(txn uint64) uint64 {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if st := ts.mu.txns[txn]; st != nil && st.hasAge {
		return st.age
	}
	return txn
}

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
// *LockError matching ErrLockNotAvailable, NoWaitTimeout one matching
// ErrLockTimeout, all without queueing; Block queues and waits. timeout <= 0
// means no timer (ctx still applies). A wait ends with nil (the lock is
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
	if t.Range {
		return m.acquireRange(ctx, txn, t, mode, p, timeout)
	}
	return m.acquirePoint(ctx, txn, t.Key, mode, p, timeout)
}

// refusalLocked is the error of request w that policy p does not let wait,
// from the edges w would have had (holders, and requests queued ahead).
func (m *Manager) refusalLocked(p WaitPolicy, w *request, blockers []deadlock.Edge) *LockError {
	key, end, isRange := w.target()
	err := ErrLockNotAvailable
	if p == NoWaitTimeout {
		err = ErrLockTimeout
	}
	return newLockError(err, w.txn, Target{Key: key, End: end, Range: isRange}, w.mode, blockers, 0)
}

// refused counts a refusal and returns its error. Called with no lock held
// (labels live under the transaction shards' mutexes).
func (m *Manager) refused(p WaitPolicy, err *LockError) error {
	switch p {
	case NoWaitTimeout:
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

// block waits for queued request r: OnWait (note, if set), the immediate
// deadlock search, then waitFor. Whatever ends it, r leaves the queue: if anything in between
// panics (an OnDeadlock callback runs in the search), the deferred cleanup
// withdraws r, which otherwise would stay queued and later be granted to
// nobody. A request granted before the panic stays held; ReleaseAll frees
// it.
func (m *Manager) block(ctx context.Context, r *request, timeout time.Duration, note *waitNote) error {
	settled := false
	defer func() {
		if !settled {
			m.finishWait(r, errAbandoned, 0)
		}
	}()
	if note != nil {
		m.opts.OnWait(note.key, note.end, note.isRange)
	}
	m.afterEnqueue(r.txn)
	err := m.waitFor(ctx, r, timeout)
	settled = true
	return err
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

// errAbandoned is the cause recorded for a request withdrawn by a panic;
// nobody receives it.
var errAbandoned = errors.New("txkv: lock request abandoned")

// waitFor blocks until r leaves the waiting state or one of timeout, ctx
// and Close fires, then settles the outcome under the lock (finishWait).
func (m *Manager) waitFor(ctx context.Context, r *request, timeout time.Duration) error {
	if h := m.hooks.waiting; h != nil {
		h(r.txn)
	}
	var timerC <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timerC = t.C
	}
	var cause error
	select {
	case <-r.ready:
	case <-timerC:
		cause = ErrLockTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	case <-m.done:
		cause = ErrClosed
	}
	err := m.finishWait(r, cause, timeout)
	m.stats.recordWait(time.Since(r.queued), err)
	if h := m.hooks.waited; h != nil {
		h(r.txn, err)
	}
	return err
}

// finishWait decides the one outcome of a wait. If the request was granted
// or aborted meanwhile, that outcome wins over the timer or ctx that woke us;
// otherwise the request is removed and the queue behind it re-examined. A
// timeout becomes a *LockError naming whom the request was waiting for.
func (m *Manager) finishWait(r *request, cause error, timeout time.Duration) error {
	if r.isRange {
		m.lockAll()
		defer m.unlockAll()
		if r.state == stateWaiting {
			if cause == ErrLockTimeout {
				cause = m.labeled(m.timeoutErrorLocked(r, timeout))
			}
			m.removeRangeWaiterLocked(r)
			m.rescanAllLocked()
		}
		return r.outcome(cause)
	}
	sh := r.head.sh
	sh.mu.Lock()
	rescan := false
	if r.state == stateWaiting {
		if cause == ErrLockTimeout {
			// Labelled under the shard lock, while the holders it names
			// still hold: ReleaseAll forgets a label only after its locks.
			cause = m.labeled(m.timeoutErrorLocked(r, timeout))
		}
		m.removePointWaiterLocked(r)
		rescan = m.rt.waiting > 0
	}
	err := r.outcome(cause)
	sh.mu.Unlock()
	if rescan {
		m.rescanRanges()
	}
	return err
}

// timeoutErrorLocked is the error of waiting request r whose timeout ran
// out: whom it waits for, from the edges it has now. The caller holds r's
// shard (a point) or every shard (a range).
func (m *Manager) timeoutErrorLocked(r *request, timeout time.Duration) *LockError {
	key, end, isRange := r.target()
	var edges []deadlock.Edge
	if isRange {
		edges = m.rangeEdgesLocked(r, nil)
	} else {
		edges = m.pointBlockersLocked(r, r.prev, nil)
	}
	return newLockError(ErrLockTimeout, r.txn, Target{Key: key, End: end, Range: isRange}, r.mode, edges, timeout)
}

// outcome maps a settled request to Acquire's result; cause is what woke a
// request that was still waiting when it was removed.
func (r *request) outcome(cause error) error {
	switch r.state {
	case stateGranted:
		return nil
	case stateAborted:
		return r.err
	}
	if cause == nil {
		cause = errors.New("txkv: internal error: lock wait ended without a cause")
	}
	r.state = stateCancelled
	return cause
}

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

// rescanRanges re-examines range waiters after a point lock went away.
func (m *Manager) rescanRanges() {
	m.lockAll()
	m.settleRangesLocked()
	m.unlockAll()
}
