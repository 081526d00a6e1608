package txn

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// temperature is MOCC's per-record temperature (Wang & Kimura, VLDB 2016,
// §3.2), approximated in a fixed table: each key hashes to a slot holding a
// decaying count of the validation failures on keys of that slot, and how
// many of them were read-modify-writes (the failed transaction had also
// written the key). Adaptive transactions lock a key at read time when its
// temperature reaches the threshold — exclusively if its conflicts are
// mostly read-modify-writes, so two hot readers never deadlock upgrading S
// to X. Collisions only make a cold key look warm (a needless lock), never a
// hot key look cold: they cost speed, not correctness.
//
// A slot packs epoch (32 bits) | rmw count (16) | count (16). Both counts
// halve for every epoch (temperatureEpoch) since the slot was last written,
// so a key cools down within seconds once its conflicts stop.
type temperature struct {
	seed  maphash.Seed
	slots [temperatureSlots]atomic.Uint64
	now   func() int64 // epoch clock (tests replace it)
}

const (
	temperatureSlots = 1 << 14
	temperatureEpoch = 500 * time.Millisecond
	maxHeat          = 1<<16 - 1
)

func newTemperature() *temperature {
	start := time.Now()
	return &temperature{seed: maphash.MakeSeed(), now: func() int64 { return int64(time.Since(start) / temperatureEpoch) }}
}

func (t *temperature) slot(key []byte) *atomic.Uint64 {
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
func (t *temperature) Of(key []byte) uint32 { return t.heatOf(key).count }

// Exclusive reports whether key's conflicts were mostly read-modify-writes,
// so a hot read of it should lock it exclusively.
func (t *temperature) Exclusive(key []byte) bool {
	h := t.heatOf(key)
	return h.count > 0 && 2*h.rmw >= h.count
}

// heatOf returns key's decayed counts. A slot that never heated (most of them,
// in a workload that rarely conflicts) needs no clock: every Adaptive read
// and write asks, and reading the clock would cost more than the rest.
func (t *temperature) heatOf(key []byte) heat {
	packed := t.slot(key).Load()
	if packed&(maxHeat<<16|maxHeat) == 0 {
		return heat{}
	}
	return unpack(packed, t.now())
}

// Heat records a validation failure on key; written says the failed
// transaction had written the key too.
func (t *temperature) Heat(key []byte, written bool) {
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

// window counts attempts and conflicts over the last windowSeconds, in
// one-second buckets: the "windowed conflict rate" the guide's monitors
// watch and Adaptive steers by. It also carries the measured steering of
// Hybrid and Adaptive (steer.go): the DB's contention monitor is the one
// place both signals live.
//
// Every read-write transaction notes itself, so Note must be cheap: it reads
// a coarse clock (seconds, kept by a goroutine of the window's own, because
// reading the system clock per transaction was half of the per-transaction
// counting on a VM) and adds to one of windowShards counters picked by the
// transaction's ID (so that two cores do not fight over one cache line).
type window struct {
	buckets [windowSeconds]windowBucket
	now     func() int64 // seconds (tests replace it); by default clock.sec
	steer   steering
	// recent says which keys were written lately (recentWrites); the
	// clock goroutine samples the read watermark for it.
	recent recentWrites
	clock  struct {
		sec  atomic.Int64 // whole seconds since the window started
		quit chan struct{}
		wg   sync.WaitGroup
	}
}

type windowBucket struct {
	sec    atomic.Int64
	shards [windowShards]struct {
		attempts, conflicts atomic.Uint64
		_                   [48]byte // one cache line each
	}
}

const (
	windowSeconds = 10
	windowShards  = 4
)

// newWindow returns a window whose clock stands at 0 until start.
func newWindow() *window {
	w := &window{}
	w.now = w.clock.sec.Load
	w.clock.quit = make(chan struct{})
	return w
}

// start runs the clock goroutine until stop.
func (w *window) start() {
	w.clock.wg.Add(1)
	go w.tick(time.Now())
}

// tick keeps clock.sec at the whole seconds since start (monotonic), four
// times a second so a bucket starts at most a quarter second late.
func (w *window) tick(start time.Time) {
	defer w.clock.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.clock.sec.Store(int64(time.Since(start) / time.Second))
			w.recent.sample()
		case <-w.clock.quit:
			return
		}
	}
}

// stop ends the clock goroutine (if started) and waits for it.
func (w *window) stop() {
	close(w.clock.quit)
	w.clock.wg.Wait()
}

func (w *window) bucket() *windowBucket {
	sec := w.now()
	b := &w.buckets[sec%windowSeconds]
	if old := b.sec.Load(); old != sec && b.sec.CompareAndSwap(old, sec) {
		for i := range b.shards {
			b.shards[i].attempts.Store(0)
			b.shards[i].conflicts.Store(0)
		}
	}
	return b
}

// Note records one finished read-write attempt of transaction id and
// whether it conflicted (failed validation or was a deadlock victim).
func (w *window) Note(id uint64, conflicted bool) {
	sh := &w.bucket().shards[id%windowShards]
	sh.attempts.Add(1)
	if conflicted {
		sh.conflicts.Add(1)
	}
}

// Rate returns conflicts / attempts over the window (0 with no attempts).
func (w *window) Rate() float64 {
	now := w.now()
	var attempts, conflicts uint64
	for i := range w.buckets {
		b := &w.buckets[i]
		if now-b.sec.Load() >= windowSeconds {
			continue
		}
		for j := range b.shards {
			attempts += b.shards[j].attempts.Load()
			conflicts += b.shards[j].conflicts.Load()
		}
	}
	if attempts == 0 {
		return 0
	}
	return float64(conflicts) / float64(attempts)
}

// recentWrites tells which keys were written in about the last second,
// with no work on the commit path: the window's clock samples the read
// watermark four times a second, and a key was written lately if its newest
// version is above the sample of a second ago. Hybrid and Adaptive, when
// they run a transaction pessimistically, read such keys under an exclusive
// lock instead of a shared one: a key that is being written is likely to be
// written by the reader too, and two readers holding S that both upgrade to
// X deadlock (the conversion deadlock). Plain Pessimistic stays strict 2PL.
type recentWrites struct {
	readTS  func() uint64 // the store's read watermark; nil until the DB sets it
	samples [recentSamples]uint64
	next    int           // the clock goroutine's own: where the next sample goes
	floor   atomic.Uint64 // the oldest sample: versions above it are recent
}

const recentSamples = 4 // one second of quarter-second ticks

// sample records the read watermark (called by the clock goroutine only).
func (r *recentWrites) sample() {
	if r.readTS == nil {
		return
	}
	r.samples[r.next] = r.readTS()
	r.next = (r.next + 1) % recentSamples
	r.floor.Store(r.samples[r.next]) // the oldest one left
}

// written reports whether a key whose newest version is newest was written
// lately. Before the first second has passed, every version counts.
func (r *recentWrites) written(newest uint64) bool {
	return newest > r.floor.Load()
}

// committingSet holds the transactions that have begun to take their commit
// timestamp and not yet released their locks. Validation asks it about the
// holders of locks on keys it read: a holder outside the set has not called
// oracle.Next yet, so its timestamp will follow the validator's and its
// writes serialize after it — its lock is no conflict. (Silo's "not locked
// by another transaction" check assumes locks exist only during commit;
// strict-2PL holders keep theirs for the whole transaction.)
//
// Why this is safe: a committer adds itself before Next() and the oracle's
// mutex orders its Next() before any later one, so a validator whose Next()
// came after sees the membership; removal happens after install.
type committingSet struct {
	shards [committingShards]struct {
		// mu protects m.
		mu sync.Mutex
		m  map[uint64]struct{}
		_  [40]byte // keep shards on separate cache lines
	}
}

const committingShards = 16

func (c *committingSet) shard(id uint64) *struct {
	mu sync.Mutex
	m  map[uint64]struct{}
	_  [40]byte
} {
	return &c.shards[id%committingShards]
}

func (c *committingSet) add(id uint64) {
	s := c.shard(id)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint64]struct{})
	}
	s.m[id] = struct{}{}
	s.mu.Unlock()
}

func (c *committingSet) remove(id uint64) {
	s := c.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// has reports whether id is committing. It is called by the lock manager
// with one of its shard mutexes held (lock order: lockmgr shard > this).
func (c *committingSet) has(id uint64) bool {
	s := c.shard(id)
	s.mu.Lock()
	_, ok := s.m[id]
	s.mu.Unlock()
	return ok
}
