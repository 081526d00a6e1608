package steer

import (
	"sync"
	"sync/atomic"
	"time"
)

// Window counts attempts and conflicts over the last windowSeconds, in
// one-second buckets: the "windowed conflict rate" the guide's monitors
// watch and Adaptive steers by. Its clock goroutine also samples the read
// watermark for RecentlyWritten.
//
// Every read-write transaction notes itself, so Note must be cheap: it reads
// a coarse clock (seconds, kept by a goroutine of the window's own, because
// reading the system clock per transaction was half of the per-transaction
// counting on a VM) and adds to one of windowShards counters picked by the
// transaction's ID (so that two cores do not fight over one cache line).
type Window struct {
	buckets [windowSeconds]windowBucket
	now     func() int64 // seconds (tests replace it); by default clock.sec
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

// NewWindow returns a window whose clock stands at 0 until Start. readTS is
// the store's read watermark, sampled for RecentlyWritten (nil: no samples,
// every version counts as recent).
func NewWindow(readTS func() uint64) *Window {
	w := &Window{}
	w.recent.readTS = readTS
	w.now = w.clock.sec.Load
	w.clock.quit = make(chan struct{})
	return w
}

// Start runs the clock goroutine until Stop.
func (w *Window) Start() {
	w.clock.wg.Add(1)
	go w.tick(time.Now())
}

// tick keeps clock.sec at the whole seconds since start (monotonic), four
// times a second so a bucket starts at most a quarter second late.
func (w *Window) tick(start time.Time) {
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

// Stop ends the clock goroutine (if started) and waits for it.
func (w *Window) Stop() {
	close(w.clock.quit)
	w.clock.wg.Wait()
}

func (w *Window) bucket() *windowBucket {
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
func (w *Window) Note(id uint64, conflicted bool) {
	sh := &w.bucket().shards[id%windowShards]
	sh.attempts.Add(1)
	if conflicted {
		sh.conflicts.Add(1)
	}
}

// Rate returns conflicts / attempts over the window (0 with no attempts).
func (w *Window) Rate() float64 {
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

// SetClock replaces the seconds clock (tests: a fixed second).
func (w *Window) SetClock(now func() int64) { w.now = now }

// RecentlyWritten reports whether a key whose newest version is newest was
// written in about the last second (recentWrites).
func (w *Window) RecentlyWritten(newest uint64) bool { return w.recent.written(newest) }

// recentWrites tells which keys were written in about the last second,
// with no work on the commit path: the window's clock samples the read
// watermark four times a second, and a key was written lately if its newest
// version is above the sample of a second ago. Hybrid and Adaptive, when
// they run a transaction pessimistically, read such keys under an exclusive
// lock instead of a shared one: a key that is being written is likely to be
// written by the reader too, and two readers holding S that both upgrade to
// X deadlock (the conversion deadlock). Plain Pessimistic stays strict 2PL.
type recentWrites struct {
	readTS  func() uint64 // the store's read watermark; nil: no samples
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
