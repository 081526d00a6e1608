package mvcc

import (
	"hash/maphash"
	"sync"
	"unsafe"
)

// The point-lookup index: key → chain, for every key of the memtable btree.
//
// A Go map did the job, but a point read of a cold key paid for it in cache misses: the group's
// control word, then the 24-byte slot (often another line), then the key bytes to compare, then
// the chain. And every reader RLocked the memtable's one RWMutex, whose reader count bounced
// between cores. This table stores only {hash, chain} in 16-byte slots (four per cache line), so
// a probe compares full 64-bit hashes within one or two lines and touches a key only on a hash
// match — and the key lives in the chain's allocation (alloc.go), which the read needs next
// anyway. It is split into shards, each with its own RWMutex, so concurrent readers rarely share
// a lock word, and a grow rehashes one shard, not the whole index.
//
// Layout: shard = the hash's top indexShardBits bits; within a shard, linear probing from the
// hash's low bits in a power-of-two table kept at most 3/4 full; deletion shifts the following
// entries back (no tombstones, so probes stay short after deletes). Hash 0 marks an empty slot;
// a key hashing to 0 is stored as 1.
//
// Locking: readers (get) RLock only the key's shard. Writers (insert, delete) must hold the
// Store's mem write lock — which serializes them — and take the shard's write lock for the
// change itself. Under mem's write lock the index cannot change, so installs read it
// (getLocked) without any shard lock.

const (
	indexShardBits = 6
	indexShards    = 1 << indexShardBits
	indexMinSlots  = 16
)

// indexSlot is one table entry: the key's hash (0 = empty) and its chain.
type indexSlot struct {
	hash uint64
	c    *chain
}

// index is the sharded hash table. Its zero value is not usable: see init.
type index struct {
	seed   maphash.Seed
	shards [indexShards]indexShard
}

// indexShardState is a shard without its padding.
type indexShardState struct {
	// mu guards slots and n. RLocked by readers; Locked by writers that also hold the
	// Store's mem write lock.
	mu struct {
		sync.RWMutex
		slots []indexSlot // power-of-two length, or nil while the shard is empty
		n     int         // occupied slots
	}
}

// indexShard is padded to two cache lines (the adjacent-line prefetcher fetches pairs), so that
// readers of neighbouring shards on different cores do not share a line.
type indexShard struct {
	indexShardState
	_ [128 - unsafe.Sizeof(indexShardState{})%128]byte
}

func (x *index) init() { x.seed = maphash.MakeSeed() }

// hash returns key's hash, never 0 (the empty-slot mark).
func (x *index) hash(key []byte) uint64 {
	h := maphash.Bytes(x.seed, key)
	if h == 0 {
		h = 1
	}
	return h
}

func (x *index) shard(h uint64) *indexShard { return &x.shards[h>>(64-indexShardBits)] }

// get returns the chain of key, or nil. Safe for concurrent use with writers.
func (x *index) get(key []byte) *chain {
	h := x.hash(key)
	sh := x.shard(h)
	sh.mu.RLock()
	c := sh.findLocked(h, key)
	sh.mu.RUnlock()
	return c
}

// getLocked is get for a caller holding mem (write): no writer can run, so no shard lock.
func (x *index) getLocked(h uint64, key []byte) *chain { return x.shard(h).findLocked(h, key) }

// insertLocked adds c, whose key hashes to h and is not in the index. Caller holds mem (write).
func (x *index) insertLocked(h uint64, c *chain) {
	sh := x.shard(h)
	sh.mu.Lock()
	sh.insertLocked(h, c)
	sh.mu.Unlock()
}

// deleteLocked removes key, which hashes to h, if present. Caller holds mem (write).
func (x *index) deleteLocked(h uint64, key []byte) {
	sh := x.shard(h)
	sh.mu.Lock()
	sh.deleteLocked(h, key)
	sh.mu.Unlock()
}

// findLocked returns the chain of key (hash h) in the shard, or nil. Caller holds the shard
// (read) or mem (write).
func (sh *indexShard) findLocked(h uint64, key []byte) *chain {
	slots := sh.mu.slots
	if len(slots) == 0 {
		return nil
	}
	mask := uint64(len(slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &slots[i]
		if s.hash == h && s.c.key == string(key) {
			return s.c
		}
		if s.hash == 0 {
			return nil
		}
	}
}

// insertLocked stores (h, c), growing the table first if it would pass 3/4 full. Caller holds
// the shard (write).
func (sh *indexShard) insertLocked(h uint64, c *chain) {
	if (sh.mu.n+1)*4 > len(sh.mu.slots)*3 {
		sh.growLocked()
	}
	place(sh.mu.slots, indexSlot{h, c})
	sh.mu.n++
}

// growLocked doubles the table (or allocates the first one) and rehashes into it.
func (sh *indexShard) growLocked() {
	old := sh.mu.slots
	slots := make([]indexSlot, max(2*len(old), indexMinSlots))
	for _, s := range old {
		if s.hash != 0 {
			place(slots, s)
		}
	}
	sh.mu.slots = slots
}

// place puts s into the first free slot from its home position (the table has one).
func place(slots []indexSlot, s indexSlot) {
	mask := uint64(len(slots) - 1)
	i := s.hash & mask
	for slots[i].hash != 0 {
		i = (i + 1) & mask
	}
	slots[i] = s
}

// deleteLocked removes key (hash h) if present, then shifts back each following entry of the
// run that may move into the hole (one whose home is not cyclically within (hole, position]),
// so that every entry stays reachable from its home without tombstones. Caller holds the
// shard (write).
func (sh *indexShard) deleteLocked(h uint64, key []byte) {
	slots := sh.mu.slots
	if len(slots) == 0 {
		return
	}
	mask := uint64(len(slots) - 1)
	i := h & mask
	for slots[i].hash != h || slots[i].c.key != string(key) {
		if slots[i].hash == 0 {
			return
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; slots[j].hash != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at i if it is at least as far from its home
		// as j is from i: its home then lies at or before i on its probe path.
		if (j-slots[j].hash)&mask >= (j-i)&mask {
			slots[i] = slots[j]
			i = j
		}
	}
	slots[i] = indexSlot{}
	sh.mu.n--
}
