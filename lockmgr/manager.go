package lockmgr

import (
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
	// searching is called, with no lock held, by a new waiter just before
	// its immediate deadlock search.
	searching func(txn uint64)
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

func hashKey(seed maphash.Seed, key []byte) uint64 { return maphash.Bytes(seed, key) }

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

// addHeld records a granted request in its transaction's held list.
func (m *Manager) addHeld(r *request) {
	ts := m.txnShardFor(r.txn)
	ts.mu.Lock()
	st := ts.stateLocked(r.txn)
	r.txnNext = st.held
	st.held = r
	ts.mu.Unlock()
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
