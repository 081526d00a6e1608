package txn

import (
	"hash/maphash"
	"sync/atomic"
	"time"
)

// temperature is MOCC's per-record temperature (Wang & Kimura, VLDB 2016,
// §3.2), approximated in a fixed table: each key hashes to a slot holding a
// decaying count of the validation failures on keys of that slot. Adaptive
// transactions lock a key at read time when its temperature reaches the
// threshold; cold keys stay optimistic. Collisions only make a cold key look
// warm (a needless lock), never a hot key look cold, so they cost speed, not
// correctness.
//
// A slot packs (epoch << 32 | count). The count halves for every epoch
// (temperatureEpoch) since it was last written, so a key cools down within a
// few seconds once its conflicts stop.
type temperature struct {
	seed  maphash.Seed
	slots [temperatureSlots]atomic.Uint64
	now   func() int64 // epoch clock (tests replace it)
}

const (
	temperatureSlots = 1 << 14
	temperatureEpoch = 500 * time.Millisecond
)

func newTemperature() *temperature {
	return &temperature{seed: maphash.MakeSeed(), now: func() int64 { return int64(time.Now().UnixNano()) / int64(temperatureEpoch) }}
}

func (t *temperature) slot(key []byte) *atomic.Uint64 {
	return &t.slots[maphash.Bytes(t.seed, key)&(temperatureSlots-1)]
}

func decayed(packed uint64, now int64) uint32 {
	epoch, count := int64(packed>>32), uint32(packed)
	if age := now - epoch; age > 0 {
		count >>= min(age, 31)
	}
	return count
}

// Of returns key's current temperature.
func (t *temperature) Of(key []byte) uint32 { return decayed(t.slot(key).Load(), t.now()) }

// Heat records a validation failure on key.
func (t *temperature) Heat(key []byte) {
	s, now := t.slot(key), t.now()
	for {
		old := s.Load()
		c := decayed(old, now)
		if c < 1<<31 {
			c++
		}
		if s.CompareAndSwap(old, uint64(uint32(now))<<32|uint64(c)) {
			return
		}
	}
}

// window counts attempts and conflicts over the last windowSeconds, in
// one-second buckets: the "windowed conflict rate" the guide's monitors
// watch and Adaptive steers by.
type window struct {
	buckets [windowSeconds]windowBucket
	now     func() int64 // seconds (tests replace it)
}

type windowBucket struct {
	sec                 atomic.Int64
	attempts, conflicts atomic.Uint64
}

const windowSeconds = 10

func newWindow() *window { return &window{now: func() int64 { return time.Now().Unix() }} }

func (w *window) bucket() *windowBucket {
	sec := w.now()
	b := &w.buckets[sec%windowSeconds]
	if old := b.sec.Load(); old != sec && b.sec.CompareAndSwap(old, sec) {
		b.attempts.Store(0)
		b.conflicts.Store(0)
	}
	return b
}

// Note records one finished read-write attempt and whether it conflicted
// (failed validation or was a deadlock victim).
func (w *window) Note(conflicted bool) {
	b := w.bucket()
	b.attempts.Add(1)
	if conflicted {
		b.conflicts.Add(1)
	}
}

// Rate returns conflicts / attempts over the window (0 with no attempts).
func (w *window) Rate() float64 {
	now := w.now()
	var attempts, conflicts uint64
	for i := range w.buckets {
		b := &w.buckets[i]
		if now-b.sec.Load() < windowSeconds {
			attempts += b.attempts.Load()
			conflicts += b.conflicts.Load()
		}
	}
	if attempts == 0 {
		return 0
	}
	return float64(conflicts) / float64(attempts)
}
