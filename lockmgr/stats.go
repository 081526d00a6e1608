package lockmgr

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// WaitBuckets are the upper bounds of Stats.WaitHistogram's buckets; the
// last bucket counts longer waits.
var WaitBuckets = [...]time.Duration{
	100 * time.Microsecond, time.Millisecond, 10 * time.Millisecond,
	100 * time.Millisecond, time.Second, 10 * time.Second,
}

// NumWaitBuckets is the number of histogram buckets.
const NumWaitBuckets = len(WaitBuckets) + 1

// Stats are cumulative counters since New.
type Stats struct {
	Waits         uint64                 // requests that had to queue
	WaitTime      time.Duration          // total time spent queued, over finished waits
	WaitHistogram [NumWaitBuckets]uint64 // finished waits by duration (see WaitBuckets)
	Timeouts      uint64                 // waits ended by the lock timeout, and refusals of requests with a timeout of 0
	NotAvailable  uint64                 // NoWait and SkipLocked requests refused
	Skipped       uint64                 // the SkipLocked part of NotAvailable
	Deadlocks     uint64                 // victims aborted
	Cancels       uint64                 // waits ended by the context or Close
	// Reorders counts soft deadlocks broken without an abort: a waiter
	// granted out of queue order, or moved ahead in it.
	Reorders uint64
}

type stats struct {
	waits, waitNanos                                 atomic.Uint64
	hist                                             [NumWaitBuckets]atomic.Uint64
	timeouts, notAvailable, skipped, deadlocks, canc atomic.Uint64
	reorders                                         atomic.Uint64
}

func (s *stats) recordWait(d time.Duration, err error) {
	s.waitNanos.Add(uint64(d))
	i := 0
	for i < len(WaitBuckets) && d > WaitBuckets[i] {
		i++
	}
	s.hist[i].Add(1)
	switch {
	case err == nil:
	case errors.Is(err, ErrLockTimeout):
		s.timeouts.Add(1)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrClosed):
		s.canc.Add(1)
	}
}

// Stats returns the counters.
func (m *Manager) Stats() Stats {
	s := &m.stats
	out := Stats{
		Waits:        s.waits.Load(),
		WaitTime:     time.Duration(s.waitNanos.Load()),
		Timeouts:     s.timeouts.Load(),
		NotAvailable: s.notAvailable.Load(),
		Skipped:      s.skipped.Load(),
		Deadlocks:    s.deadlocks.Load(),
		Cancels:      s.canc.Load(),
		Reorders:     s.reorders.Load(),
	}
	for i := range s.hist {
		out.WaitHistogram[i] = s.hist[i].Load()
	}
	return out
}
