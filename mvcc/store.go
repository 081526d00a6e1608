package mvcc

import (
	"bytes"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/google/btree"
)

// Approximate per-object overheads used by MemBytes (struct headers, btree slot, pointers).
const (
	keyOverhead     = 64
	versionOverhead = 48
)

// Options tunes a Store. A nil *Options means the defaults.
type Options struct {
	// ScanChunk is how many entries an Iterator reads per refill from the Base and from the
	// memtable (the memtable lock and the base are never held across Iterator.Next calls).
	// Default 256.
	ScanChunk int
	// GCChunk is how many memtable keys GC, Flushed and CheckpointEntries visit per hold of the
	// memtable read lock, so that installs are not stalled behind a full pass. Default 1024.
	GCChunk int
	// Degree is the degree of the memtable btree. Default 32.
	Degree int
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.ScanChunk <= 0 {
		out.ScanChunk = 256
	}
	if out.GCChunk <= 0 {
		out.GCChunk = 1024
	}
	if out.Degree < 2 {
		out.Degree = 32
	}
	return out
}

// version is one committed version of a key. ts and value never change once the version is
// published; next is edited (truncated by GC, or linked by an out-of-order install) while
// readers walk the chain, hence atomic.
type version struct {
	ts    uint64
	value []byte
	tomb  bool
	next  atomic.Pointer[version]
}

// chain is a key's version list, newest (highest ts) first, and the key itself: the index
// compares it on a hash match (it is allocated with the chain, alloc.go).
type chain struct {
	head atomic.Pointer[version]
	key  string // immutable; shares its bytes with the btree entry's key
	// first is the version allocated inside the chain's own object (alloc.go), or nil. Its
	// memory lasts as long as the chain's, so MemBytes releases it with the key, not when GC
	// unlinks it. Immutable.
	first *version
}

// firstBytes is the MemBytes charge that stays with the chain until its key leaves: its inline
// first version, if any.
func (c *chain) firstBytes() int64 {
	if c.first == nil {
		return 0
	}
	return int64(len(c.first.value)) + versionOverhead
}

// visible returns the newest version with ts <= at, or nil.
func (c *chain) visible(at uint64) *version {
	for v := c.head.Load(); v != nil; v = v.next.Load() {
		if v.ts <= at {
			return v
		}
	}
	return nil
}

// memEntry is a btree slot: the key (immutable, owned by the store) and its chain. A value
// type, so a lookup probe memEntry{key: k} does not allocate.
type memEntry struct {
	key []byte
	c   *chain
}

func lessMem(a, b memEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// flushReq is a Flushed(upTo) call waiting for the readers of epochs <= epoch to close.
type flushReq struct {
	upTo  uint64
	epoch uint64
	tombs bool // only tombstones <= upTo may go (FlushedTombstones); values stay cached
}

// waiter is a WaitVisible call blocked until the read watermark reaches ts.
type waiter struct {
	ts uint64
	ch chan struct{}
}

// Store is the versioned memtable over a checkpointed Base, with the timestamp oracle, the
// registry of active snapshots and the epoch pins. All methods are safe for concurrent use
// (except Replay, which runs before any other use).
//
// Lock order: gcMu → mem → index shard; gcMu → reg shard; reg.mu → reg shard. orc, the reg
// shards and the index shards are leaves: nothing else is acquired while holding them.
type Store struct {
	base      Base
	emptyBase bool
	opts      Options

	// gcMu serializes passes that edit version chains (GC and the deferred flush removal):
	// they edit under mem.RLock, so they must exclude each other. Installs exclude them
	// through mem.Lock.
	gcMu sync.Mutex

	// mem guards the btree (insert and delete of keys), serializes the writers of index and
	// excludes installs from GC passes. Scans RLock it per chunk; chains are walked lock-free.
	mem struct {
		sync.RWMutex
		tree *btree.BTreeG[memEntry]
	}
	// index maps each key of mem.tree to its chain: point lookups (every Get, every
	// validation) cost one hash probe instead of a log2(n)-deep walk of byte comparisons; the
	// tree serves order. Readers lock only one index shard, never mem; writers hold mem (write)
	// and the shard (index.go).
	index index

	// orc guards the oracle: the last allocated ts, the done and durable marks above the
	// watermarks, the waiters of both and the durability failure (durable.go).
	orc struct {
		sync.Mutex
		last    uint64              // highest ts handed out by Next (or restored)
		done    map[uint64]struct{} // done timestamps > readTS
		waiters []waiter
		durable map[uint64]struct{} // timestamps marked durable, > durableTS
		dwait   []waiter            // WaitDurable calls
		failed  error               // FailDurable's error: durableTS never moves again
	}
	// readTS is the read watermark; written only under orc, read lock-free.
	readTS atomic.Uint64
	// durableTS is the durable watermark (durable.go): every ts <= it is done and, if it
	// committed, durable. <= readTS. Written only under orc, read lock-free.
	durableTS atomic.Uint64

	// reg is the registry of open readers and their epoch pins (registry.go).
	reg registry
	// safeUpTo: every memtable version <= safeUpTo may be dropped (Base holds it and no reader
	// that pinned before the Base got it is still open). Written under reg.mu, read by GC passes.
	safeUpTo atomic.Uint64
	// safeTombsUpTo: a tombstone <= safeTombsUpTo that is a key's newest version <= the GC
	// watermark may be dropped with everything older (Base has applied the deletion and no
	// reader that pinned before it did is still open). >= safeUpTo. Written under reg.mu.
	safeTombsUpTo atomic.Uint64

	versions atomic.Int64
	memBytes atomic.Int64
}

// NewStore returns a store over base (nil means EmptyBase) whose oracle starts after lastTS:
// ReadTS() is lastTS and Next() returns lastTS+1 first.
func NewStore(base Base, lastTS uint64, opts *Options) *Store {
	s := &Store{base: base, emptyBase: isEmptyBase(base), opts: opts.withDefaults()}
	if base == nil {
		s.base = EmptyBase{}
	}
	s.mem.tree = btree.NewG(s.opts.Degree, lessMem)
	s.index.init()
	s.orc.last = lastTS
	s.orc.done = make(map[uint64]struct{})
	s.orc.durable = make(map[uint64]struct{})
	s.readTS.Store(lastTS)
	s.durableTS.Store(lastTS)
	return s
}

// Replay installs a record recovered from the log (single-threaded, before any other use). The
// oracle is moved past ts if needed, so ReadTS() >= ts and DurableTS() >= ts afterwards: a
// recovered record is durable.
func (s *Store) Replay(ts uint64, writes []Write) {
	s.Install(ts, writes)
	s.orc.Lock()
	defer s.orc.Unlock()
	if ts > s.orc.last {
		s.orc.last = ts
	}
	if ts > s.readTS.Load() {
		for d := range s.orc.done {
			if d <= ts {
				delete(s.orc.done, d)
			}
		}
		s.advanceLocked(ts)
	}
	for d := range s.orc.durable {
		if d <= ts {
			delete(s.orc.durable, d)
		}
	}
	s.advanceDurableLocked(max(ts, s.durableTS.Load()))
}

// Install adds the versions of a committed transaction at ts (a tombstone for a Delete). Keys
// and values are copied. Call it before Done(ts): a snapshot at the watermark must find every
// version <= its ts installed. A later write of the same key in writes wins.
func (s *Store) Install(ts uint64, writes []Write) {
	if len(writes) == 0 {
		return
	}
	s.mem.Lock()
	defer s.mem.Unlock()
	for i := range writes {
		s.installLocked(ts, &writes[i])
	}
}

func (s *Store) installLocked(ts uint64, w *Write) {
	h := s.index.hash(w.Key)
	c := s.index.getLocked(h, w.Key)
	if c == nil {
		// The chain is complete, first version linked, before the index publishes it.
		var e memEntry
		e.c, e.key = newChain(ts, w)
		s.mem.tree.ReplaceOrInsert(e)
		s.index.insertLocked(h, e.c)
		s.memBytes.Add(int64(len(e.key)) + keyOverhead + int64(len(e.c.head.Load().value)) + versionOverhead)
		s.versions.Add(1)
		return
	}
	v := newVersion(ts, w.Value, w.Delete)
	s.memBytes.Add(int64(len(v.value)) + versionOverhead)

	// Find the slot: usually the head (timestamps of one key arrive in order because writers
	// hold the key's X lock through install), but stay correct for any order.
	var prev *version
	cur := c.head.Load()
	for cur != nil && cur.ts > ts {
		prev, cur = cur, cur.next.Load()
	}
	if cur != nil && cur.ts == ts { // same ts twice: the later write replaces the earlier
		v.next.Store(cur.next.Load())
		if cur != c.first { // an inline first version stays charged with its chain
			s.memBytes.Add(-int64(len(cur.value)) - versionOverhead)
		}
	} else {
		v.next.Store(cur)
		s.versions.Add(1)
	}
	// Publish last: a reader sees either the old chain or the complete new version.
	if prev == nil {
		c.head.Store(v)
	} else {
		prev.next.Store(v)
	}
}

// immutableString views b as a string without copying. b must never change
// afterwards: memtable keys are private copies that are never written.
func immutableString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// lookup returns the chain of key, or nil. It locks one index shard, not mem, so it may run in
// the middle of an Install or a GC removal — as chain walks always did, after the lookup. A
// chain is published with its first version linked, so an empty chain is one GC emptied (being
// removed); it reads as "not in the memtable", which is right.
func (s *Store) lookup(key []byte) *chain { return s.index.get(key) }

// NewestVersion returns the newest installed version of key in the memtable, tombstones
// included (a delete is a write), or 0 if the memtable holds none. It does not consult Base:
// to validate a read made at snapshot ts, use HasNewer(key, ts).
func (s *Store) NewestVersion(key []byte) uint64 {
	c := s.lookup(key)
	if c == nil {
		return 0
	}
	if v := c.head.Load(); v != nil {
		return v.ts
	}
	return 0
}

// HasNewer reports whether the memtable holds a version of key (tombstones included) newer
// than ts.
//
// Memtable-only is enough when ts is the ts of a snapshot that is still open: Base holds only
// versions <= some checkpoint ts <= the GC watermark <= every open snapshot's ts, and neither GC
// nor the flush removal drops a version > the watermark. So every version newer than an open
// snapshot is in the memtable. Keep the snapshot open until validation is over.
func (s *Store) HasNewer(key []byte, ts uint64) bool {
	c := s.lookup(key)
	if c == nil {
		return false
	}
	v := c.head.Load()
	return v != nil && v.ts > ts
}

// HasNewerInRange reports whether any key in [start, end) (nil = open) has a memtable version
// newer than ts (see HasNewer for why the memtable suffices). It visits every memtable key in
// the range.
func (s *Store) HasNewerInRange(start, end []byte, ts uint64) bool {
	found := false
	s.mem.RLock()
	defer s.mem.RUnlock()
	s.ascendLocked(start, end, func(e memEntry) bool {
		if v := e.c.head.Load(); v != nil && v.ts > ts {
			found = true
			return false
		}
		return true
	})
	return found
}

// ascendLocked visits memtable entries in [start, end) (nil = open). Caller holds mem.
func (s *Store) ascendLocked(start, end []byte, fn func(memEntry) bool) {
	visit := func(e memEntry) bool {
		if end != nil && bytes.Compare(e.key, end) >= 0 {
			return false
		}
		return fn(e)
	}
	if start == nil {
		s.mem.tree.Ascend(visit)
		return
	}
	s.mem.tree.AscendGreaterOrEqual(memEntry{key: start}, visit)
}

// ascendAfterLocked visits up to limit memtable entries with key > after (or >= start when
// after is nil) and < end. It returns how many entries it visited and the last key visited.
// Caller holds mem (read or write).
func (s *Store) ascendAfterLocked(start, after, end []byte, limit int, fn func(memEntry)) (int, []byte) {
	n := 0
	var last []byte
	from := start
	if after != nil {
		from = after
	}
	s.ascendLocked(from, end, func(e memEntry) bool {
		if after != nil && bytes.Equal(e.key, after) {
			return true
		}
		if n == limit {
			return false
		}
		n++
		last = e.key
		fn(e)
		return true
	})
	return n, last
}

// Stats is a point-in-time summary of the store.
type Stats struct {
	Keys            int    // keys in the memtable
	Versions        int    // versions in the memtable (tombstones included)
	MemBytes        int64  // approximate memory held by the memtable
	ActiveSnapshots int    // open snapshots (Snapshot, not Latest)
	Pinned          int    // open readers pinning an epoch (Snapshot and Latest)
	ReadTS          uint64 // the read watermark
	LastTS          uint64 // the last allocated commit ts
	Pending         int    // allocated timestamps not yet done
	Waiters         int    // WaitVisible calls blocked
	Epoch           uint64 // current epoch
	PendingFlushes  int    // Flushed calls whose removal waits for old readers
	FlushedUpTo     uint64 // versions <= this may leave the memtable
}

// Stats returns a summary of the store (each field is consistent; the set is approximate).
func (s *Store) Stats() Stats {
	var st Stats
	s.mem.RLock()
	st.Keys = s.mem.tree.Len()
	s.mem.RUnlock()
	st.Versions = int(s.versions.Load())
	st.MemBytes = s.memBytes.Load()

	st.ActiveSnapshots, st.Pinned = s.readerCounts()
	s.reg.mu.Lock()
	st.Epoch = s.reg.epoch.Load()
	st.PendingFlushes = len(s.reg.mu.pending)
	s.reg.mu.Unlock()
	st.FlushedUpTo = s.safeUpTo.Load()

	s.orc.Lock()
	st.LastTS = s.orc.last
	st.ReadTS = s.readTS.Load()
	st.Pending = int(st.LastTS-st.ReadTS) - len(s.orc.done)
	st.Waiters = len(s.orc.waiters)
	s.orc.Unlock()
	return st
}

// MemBytes returns the approximate memory held by the memtable (keys, values and per-version
// overhead); the checkpoint trigger compares it with the configured memtable size.
func (s *Store) MemBytes() int64 { return s.memBytes.Load() }

// maxTS is the ts of a Latest reader: it sees every installed version.
const maxTS = math.MaxUint64
