package steer

import (
	"hash/maphash"
	"sync/atomic"
	"time"
)

// Temperature is MOCC's per-record temperature (Wang & Kimura, VLDB 2016,
// §3.2), approximated in a fixed table: each key hashes to a slot holding a
// decaying count of the validation failures on keys of that slot, and how
// many of them were read-modify-writes (the failed transaction had also
// written the key). Adaptive transactions (txn) lock a key at read time when its
// temperature reaches the threshold — exclusively if its conflicts are
// mostly read-modify-writes, so two hot readers never deadlock upgrading S
// to X. Collisions only make a cold key look warm (a needless lock), never a
// hot key look cold: they cost speed, not correctness.
//
// A slot packs epoch (32 bits) | rmw count (16) | count (16). Both counts
// halve for every epoch (temperatureEpoch) since the slot was last written,
// so a key cools down within seconds once its conflicts stop.
type Temperature struct {
	seed  maphash.Seed
	slots [temperatureSlots]atomic.Uint64
	now   func() int64 // epoch clock (tests replace it)
}

const (
	temperatureSlots = 1 << 14
	temperatureEpoch = 500 * time.Millisecond
	maxHeat          = 1<<16 - 1
)

// NewTemperature returns a table with every key cold.
func NewTemperature() *Temperature {
	start := time.Now()
	return &Temperature{seed: maphash.MakeSeed(), now: func() int64 { return int64(time.Since(start) / temperatureEpoch) }}
}

func (t *Temperature) slot(key []byte) *atomic.Uint64 {
	return &t.slots[maphash.Bytes(t.seed, key)&(temperatureSlots-1)]
}

// heat is a slot's decayed counts.
type heat struct{ count, rmw uint32 }

func unpack(packed uint64, now int64) heat {
	h := heat{count: uint32(packed & maxHeat), rmw: uint32(packed >> 16 & maxHeat)}
	if age := now - int64(packed>>32); age > 0 {
		shift := min(age, 31)
		h.count >>= shift
		h.rmw >>= shift
	}
	return h
}

func pack(h heat, now int64) uint64 {
	return uint64(uint32(now))<<32 | uint64(min(h.rmw, maxHeat))<<16 | uint64(min(h.count, maxHeat))
}

// Of returns key's current temperature.
func (t *Temperature) Of(key []byte) uint32 { return t.heatOf(key).count }

// Exclusive reports whether key's conflicts were mostly read-modify-writes,
// so a hot read of it should lock it exclusively.
func (t *Temperature) Exclusive(key []byte) bool {
	h := t.heatOf(key)
	return h.count > 0 && 2*h.rmw >= h.count
}

// heatOf returns key's decayed counts. A slot that never heated (most of them,
// in a workload that rarely conflicts) needs no clock: every Adaptive read
// and write asks, and reading the clock would cost more than the rest.
func (t *Temperature) heatOf(key []byte) heat {
	packed := t.slot(key).Load()
	if packed&(maxHeat<<16|maxHeat) == 0 {
		return heat{}
	}
	return unpack(packed, t.now())
}

// Heat records a validation failure on key; written says the failed
// transaction had written the key too.
func (t *Temperature) Heat(key []byte, written bool) {
	s, now := t.slot(key), t.now()
	for {
		old := s.Load()
		h := unpack(old, now)
		h.count++
		if written {
			h.rmw++
		}
		if s.CompareAndSwap(old, pack(h, now)) {
			return
		}
	}
}

// SetClock replaces the epoch clock (one tick per temperatureEpoch): tests
// use it to age the table without sleeping.
func (t *Temperature) SetClock(now func() int64) { t.now = now }
