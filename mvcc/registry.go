package mvcc

import (
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// regShards is how many independently locked parts the reader registry has. Every reader
// (each View, each Get) registers and unregisters once, so a single registry mutex is a cache
// line all cores fight over; readers pick a shard at random instead, and the rare global
// questions (the GC watermark, the oldest pinned epoch) visit every shard.
const regShards = 16

// regShard holds the readers registered in one shard.
type regShard struct {
	// Mutex protects the counts below. It is a leaf: nothing else is acquired while it is held.
	sync.Mutex
	snaps  counts // snapshot ts → open snapshots at it
	pins   counts // epoch → open readers pinning it
	nsnaps int
	npins  int
	// The counts start in these arrays, inside the shard. Allocated on their own, the
	// 16-byte arrays of different shards packed into shared cache lines, and registering
	// on one core stalled registering on the other (the registry was a third of a cached
	// View's time).
	snapsBuf, pinsBuf [4]countEntry
	_                 [56]byte // keep shards on separate cache lines
}

// initLocked points the counts at the shard's own arrays (on first use: the zero registry is ready).
func (sh *regShard) initLocked() {
	if sh.snaps == nil {
		sh.snaps, sh.pins = sh.snapsBuf[:0], sh.pinsBuf[:0]
	}
}

// counts is a small multiset of uint64s. Readers that are open at the same time mostly share
// a handful of timestamps and epochs, so a slice searched linearly beats a map: no hashing,
// and no rehash or delete bookkeeping on the way in and out.
type counts []countEntry

type countEntry struct {
	v uint64
	n int32
}

func (c *counts) add(v uint64) {
	for i := range *c {
		if (*c)[i].v == v {
			(*c)[i].n++
			return
		}
	}
	*c = append(*c, countEntry{v, 1})
}

// remove drops one occurrence of v, which must be present.
func (c *counts) remove(v uint64) {
	s := *c
	for i := range s {
		if s[i].v != v {
			continue
		}
		if s[i].n--; s[i].n == 0 {
			last := len(s) - 1
			s[i] = s[last]
			*c = s[:last]
		}
		return
	}
}

// min returns the smallest value present, or def if none is.
func (c counts) min(def uint64) uint64 {
	for _, e := range c {
		def = min(def, e.v)
	}
	return def
}

// registry is the set of open readers: snapshots (which hold back the GC watermark) and epoch
// pins (which hold back the removal of flushed versions).
//
// Lock order: mu → shard. A reader takes only its shard.
type registry struct {
	shards [regShards]regShard
	// epoch is the current epoch. It changes only under mu and is read by readers under their
	// shard lock: see Flushed for why that ordering is enough.
	epoch atomic.Uint64
	// hasPending is len(mu.pending) > 0, readable without mu, so that closing readers take mu
	// only when a flushed removal may be waiting for them.
	hasPending atomic.Bool
	// mu guards the flushes waiting for old readers to close.
	mu struct {
		sync.Mutex
		pending []flushReq // in epoch order
	}
}

// register adds a reader: a snapshot at the read watermark (snapshot) or a Latest reader, and
// pins the current epoch. The ts is read under the shard lock: see oldestSnapshot.
func (s *Store) register(sn *Snapshot, snapshot bool) {
	i := uint8(rand.Uint32() % regShards)
	sh := &s.reg.shards[i]
	sh.Lock()
	sh.initLocked()
	ts := uint64(maxTS)
	if snapshot {
		ts = s.readTS.Load()
		sh.snaps.add(ts)
		sh.nsnaps++
	}
	e := s.reg.epoch.Load()
	sh.pins.add(e)
	sh.npins++
	sh.Unlock()
	sn.s, sn.ts, sn.epoch, sn.shard, sn.latest = s, ts, e, i, !snapshot
}

// unregister removes a reader and reports whether a pending flush may now be released.
func (s *Store) unregister(sn *Snapshot) bool {
	sh := &s.reg.shards[sn.shard]
	sh.Lock()
	if !sn.latest {
		sh.snaps.remove(sn.ts)
		sh.nsnaps--
	}
	sh.pins.remove(sn.epoch)
	sh.npins--
	sh.Unlock()
	// Flushed sets hasPending before it looks at the shards; this load comes after our
	// shard's unlock. So either its look saw the pin gone, or we see the flag.
	return s.reg.hasPending.Load()
}

// oldestSnapshot returns min(ReadTS, the oldest open snapshot's ts). ReadTS is read first:
// a snapshot that registers in a shard after that shard was visited reads ReadTS later, under
// the shard lock, so its ts is at least the value read here — the result can never exceed an
// open snapshot.
func (s *Store) oldestSnapshot() uint64 {
	return s.reg.minOver(s.readTS.Load(), func(sh *regShard) *counts { return &sh.snaps })
}

// oldestPinnedEpoch returns the oldest epoch an open reader pins (MaxUint64 if none).
func (s *Store) oldestPinnedEpoch() uint64 {
	return s.reg.minOver(math.MaxUint64, func(sh *regShard) *counts { return &sh.pins })
}

// minOver returns the smallest value of the counts that of picks in every shard, visited in
// turn under its lock, or def if smaller.
func (r *registry) minOver(def uint64, of func(*regShard) *counts) uint64 {
	for i := range r.shards {
		sh := &r.shards[i]
		sh.Lock()
		def = of(sh).min(def)
		sh.Unlock()
	}
	return def
}

// readerCounts returns the number of open snapshots and of pinned readers.
func (s *Store) readerCounts() (snaps, pins int) {
	for i := range s.reg.shards {
		sh := &s.reg.shards[i]
		sh.Lock()
		snaps += sh.nsnaps
		pins += sh.npins
		sh.Unlock()
	}
	return snaps, pins
}
