package txn

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// HotKey is one key (or, for a range lock, a range's start) that transactions
// recently fought over, with decayed counts of the contention events on it.
type HotKey struct {
	Key       []byte
	End       []byte // for a range lock wait: the range's end (nil: open, or a point key)
	Range     bool
	Conflicts uint64 // validation failures (ConflictError) on it
	LockWaits uint64 // lock requests that had to wait for it
	Deadlocks uint64 // deadlock cycles through it
	// Temperature is the key's conflict temperature now (MOCC's, package
	// steer: recent validation failures, halving every 500 ms); 0 for a range.
	Temperature uint32
	// AdaptiveLocks says an Adaptive transaction now locks the key when it
	// reads it (Temperature ≥ Options.AdaptiveThreshold): the key has
	// switched from optimistic to locked. False for a range.
	AdaptiveLocks bool
}

func (h HotKey) score() uint64 { return h.Conflicts + h.LockWaits + h.Deadlocks }

// hotKeys finds the keys with the most contention events — conflicts, lock
// waits, deadlocks — with bounded memory: the space-saving algorithm
// (Metwally, Agrawal, El Abbadi, ICDT 2005). It keeps hotKeysTracked
// counters; an event on an untracked key takes over the counter with the
// smallest score, inheriting that score (so a count may overestimate by the
// score it inherited, never underestimate: a key that is truly hot cannot be
// missed). Every hotKeysEpoch all counts halve, so the list follows the
// workload as it shifts.
//
// Nothing here is on the commit path of a transaction that met no
// contention: only events — a failed validation, a lock wait, a deadlock —
// record, and each of those already cost far more than this mutex and map.
type hotKeys struct {
	// mu protects the tracked counters and the epoch.
	mu struct {
		sync.Mutex
		byKey map[string]*hotKey
		epoch time.Time // when counts last halved
	}
	now func() time.Time // tests replace it
	off atomic.Bool      // BenchmarkHotKeysOverhead's baseline: record nothing
}

type hotKey struct {
	HotKey
	inherited uint64 // the score taken over with the counter: the possible overcount
}

// rank orders counters: the events counted plus the score inherited, which
// bounds what an evicted key may have had (space-saving's estimate).
func (k *hotKey) rank() uint64 { return k.score() + k.inherited }

const (
	hotKeysTracked = 128
	hotKeysEpoch   = 10 * time.Second
)

func newHotKeys() *hotKeys {
	h := &hotKeys{now: time.Now}
	h.mu.byKey = make(map[string]*hotKey, hotKeysTracked)
	h.mu.epoch = h.now()
	return h
}

// The kinds of contention event.
type hotEvent uint8

const (
	hotConflict hotEvent = iota
	hotWait
	hotDeadlock
)

// note records one event on the target (end and isRange describe a range).
func (h *hotKeys) note(key, end []byte, isRange bool, ev hotEvent) {
	if h.off.Load() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.decayLocked()
	k := h.counterLocked(key, end, isRange)
	switch ev {
	case hotConflict:
		k.Conflicts++
	case hotWait:
		k.LockWaits++
	case hotDeadlock:
		k.Deadlocks++
	}
}

// counterLocked returns the target's counter, taking over the smallest one if
// the table is full.
func (h *hotKeys) counterLocked(key, end []byte, isRange bool) *hotKey {
	id := hotID(key, end, isRange)
	if k, ok := h.mu.byKey[id]; ok {
		return k
	}
	k := &hotKey{HotKey: HotKey{Key: bytes.Clone(key), End: bytes.Clone(end), Range: isRange}}
	if len(h.mu.byKey) >= hotKeysTracked {
		victim, vid := h.smallestLocked()
		delete(h.mu.byKey, vid)
		k.inherited = victim.rank()
	}
	h.mu.byKey[id] = k
	return k
}

func hotID(key, end []byte, isRange bool) string {
	if !isRange {
		return string(key)
	}
	return "\x00range\x00" + string(key) + "\x00" + string(end)
}

func (h *hotKeys) smallestLocked() (*hotKey, string) {
	var min *hotKey
	var id string
	for i, k := range h.mu.byKey {
		if min == nil || k.rank() < min.rank() {
			min, id = k, i
		}
	}
	return min, id
}

// decayLocked halves every count once per epoch passed, and drops counters
// that reach zero.
func (h *hotKeys) decayLocked() {
	now := h.now()
	for now.Sub(h.mu.epoch) >= hotKeysEpoch {
		h.mu.epoch = h.mu.epoch.Add(hotKeysEpoch)
		for id, k := range h.mu.byKey {
			k.Conflicts, k.LockWaits, k.Deadlocks, k.inherited = k.Conflicts/2, k.LockWaits/2, k.Deadlocks/2, k.inherited/2
			if k.rank() == 0 {
				delete(h.mu.byKey, id)
			}
		}
		if len(h.mu.byKey) == 0 {
			h.mu.epoch = now
		}
	}
}

// top returns up to n targets by score, highest first (ties by key).
func (h *hotKeys) top(n int) []HotKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.decayLocked()
	ks := make([]*hotKey, 0, len(h.mu.byKey))
	for _, k := range h.mu.byKey {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b *hotKey) int {
		if c := cmp.Compare(b.rank(), a.rank()); c != 0 {
			return c
		}
		return bytes.Compare(a.Key, b.Key)
	})
	if n >= 0 && len(ks) > n {
		ks = ks[:n]
	}
	out := make([]HotKey, len(ks))
	for i, k := range ks {
		out[i] = k.HotKey
		out[i].Key, out[i].End = bytes.Clone(k.Key), bytes.Clone(k.End)
	}
	return out
}

// HotKeys returns up to n keys (and ranges) with the most recent contention —
// validation conflicts, lock waits and deadlocks, decayed by half every ten
// seconds — highest first. It answers "which keys are my transactions
// fighting over?" without logging every *ConflictError. 128 targets are
// tracked; the counts are those since a target entered the table, and the
// order also weighs what an evicted target may have had, so a truly hot key
// cannot be pushed out by a stream of cold ones.
func (db *DB) HotKeys(n int) []HotKey {
	hs := db.hot.top(n)
	for i := range hs {
		if !hs[i].Range {
			hs[i].Temperature = db.temp.Of(hs[i].Key)
			hs[i].AdaptiveLocks = db.isHot(hs[i].Key)
		}
	}
	return hs
}
