package mvcc

import (
	"context"
	"fmt"
	"sync/atomic"
)

// # The durable watermark
//
// A commit is installed (visible) before its log record is durable: the commit protocol
// releases its locks at install, so transactions that conflict with it need not queue behind
// an fsync. The store therefore keeps a second watermark beside ReadTS:
//
//	ts:        41    42    43    44    45
//	done:      yes   yes   yes   yes   no        ReadTS    = 44
//	durable:   yes   yes   no    yes   -         DurableTS = 42
//
// DurableTS is the highest ts such that every ts <= it is done and, if it committed, durable
// (an aborted ts has nothing to persist and is marked with DoneDurable). So DurableTS <=
// ReadTS, and a version <= DurableTS survives any crash. The log writer marks each batch with
// MarkDurable once it is written; batches become durable in the order their records were
// enqueued, not in ts order, so marks above a gap wait in orc.durable like out-of-order Done
// marks wait in orc.done.
//
// Who waits on it: a reader that returned a version above DurableTS (Snapshot.Seen says
// which) waits until it is durable before it acknowledges anything, and the change-stream
// sequencer releases only durable commits. If the log fails, FailDurable ends every wait with
// its error and DurableTS never moves again: nothing installed but not durable is reported.

// DoneDurable marks ts done and durable at once: an aborted ts (nothing to persist), or a
// commit of a store that has no log. See Done.
func (s *Store) DoneDurable(ts uint64) {
	s.orc.Lock()
	defer s.orc.Unlock()
	if ts > s.durableTS.Load() && ts <= s.orc.last {
		s.orc.durable[ts] = struct{}{}
	}
	s.doneLocked(ts)
}

// MarkDurable records that the commits at tss are durable (the log writer calls it once per
// batch). The durable watermark advances over them once they are done too.
func (s *Store) MarkDurable(tss []uint64) {
	s.orc.Lock()
	defer s.orc.Unlock()
	if s.orc.failed != nil {
		return
	}
	for _, ts := range tss {
		if ts > s.durableTS.Load() && ts <= s.orc.last {
			s.orc.durable[ts] = struct{}{}
		}
	}
	s.advanceDurableLocked(s.durableTS.Load())
}

// advanceDurableLocked moves the durable watermark from dts past every consecutive ts that is
// both marked durable and done (<= ReadTS), and wakes the WaitDurable calls it satisfies.
func (s *Store) advanceDurableLocked(dts uint64) {
	if s.orc.failed != nil {
		return
	}
	rts := s.readTS.Load()
	for dts < rts {
		if _, ok := s.orc.durable[dts+1]; !ok {
			break
		}
		delete(s.orc.durable, dts+1)
		dts++
	}
	s.durableTS.Store(dts)
	s.orc.dwait = wake(s.orc.dwait, dts)
}

// DurableTS returns the durable watermark: every ts <= it is done and durable (or aborted).
// It only moves forward, and never passes ReadTS.
func (s *Store) DurableTS() uint64 { return s.durableTS.Load() }

// FailDurable records that the log failed: every WaitDurable call for a ts above the durable
// watermark, now or later, returns err. The first error sticks.
func (s *Store) FailDurable(err error) {
	s.orc.Lock()
	defer s.orc.Unlock()
	if s.orc.failed != nil {
		return
	}
	s.orc.failed = err
	for _, w := range s.orc.dwait {
		close(w.ch)
	}
	clear(s.orc.dwait)
	s.orc.dwait = s.orc.dwait[:0]
}

// DurabilityErr returns FailDurable's error, or nil.
func (s *Store) DurabilityErr() error {
	s.orc.Lock()
	defer s.orc.Unlock()
	return s.orc.failed
}

// WaitDurable blocks until DurableTS() >= ts, returning nil; or until the log fails,
// returning FailDurable's error; or until ctx ends, returning ctx.Err(). A version <=
// DurableTS costs one atomic load.
func (s *Store) WaitDurable(ctx context.Context, ts uint64) error {
	if s.durableTS.Load() >= ts {
		return nil
	}
	return s.waitMark(ctx, ts, &s.durableTS, &s.orc.dwait, "WaitDurable")
}

// waitMark waits until mark >= ts, queued in list (one of orc's waiter lists). For the
// durable list, a failure recorded by FailDurable also ends the wait.
func (s *Store) waitMark(ctx context.Context, ts uint64, mark *atomic.Uint64, list *[]waiter, name string) error {
	s.orc.Lock()
	if err := s.waitDoneLocked(ts, mark, list, name); err != nil || mark.Load() >= ts {
		s.orc.Unlock()
		return err
	}
	w := waiter{ts: ts, ch: make(chan struct{})}
	*list = append(*list, w)
	s.orc.Unlock()

	select {
	case <-w.ch:
		return s.waitOutcome(ts, mark, list)
	case <-ctx.Done():
	}
	// Cancelled: leave the queue. If the watermark got there meanwhile, report success, so the
	// outcome is exactly one of "reached" or "cancelled and not waiting any more".
	s.orc.Lock()
	defer s.orc.Unlock()
	for i, x := range *list {
		if x.ch == w.ch {
			*list = append((*list)[:i], (*list)[i+1:]...)
			return ctx.Err()
		}
	}
	return s.waitDoneLocked(ts, mark, list, name)
}

// waitDoneLocked returns the error that ends a wait for ts at once: the ts was never
// allocated, or (for durability) the log failed before the watermark reached it.
func (s *Store) waitDoneLocked(ts uint64, mark *atomic.Uint64, list *[]waiter, name string) error {
	switch {
	case mark.Load() >= ts:
		return nil
	case ts > s.orc.last:
		return fmt.Errorf("%w: %s(%d), last allocated %d", ErrUnknownTS, name, ts, s.orc.last)
	case list == &s.orc.dwait && s.orc.failed != nil:
		return s.orc.failed
	}
	return nil
}

// waitOutcome is the result of a wait whose channel was closed: reached, or failed.
func (s *Store) waitOutcome(ts uint64, mark *atomic.Uint64, list *[]waiter) error {
	if mark.Load() >= ts || list != &s.orc.dwait {
		return nil
	}
	return s.DurabilityErr()
}
