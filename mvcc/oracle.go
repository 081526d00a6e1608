package mvcc

import (
	"context"
	"fmt"
)

// Next allocates the next commit timestamp. It stays pending — holding the read watermark
// below it — until Done(ts).
func (s *Store) Next() uint64 {
	s.orc.Lock()
	s.orc.last++
	ts := s.orc.last
	s.orc.Unlock()
	return ts
}

// Done marks ts finished: committed (call it after Install) or aborted. The read watermark
// advances to the highest ts such that every ts <= it is done. Done of a ts that was never
// allocated, or twice, is ignored.
func (s *Store) Done(ts uint64) {
	s.orc.Lock()
	defer s.orc.Unlock()
	rts := s.readTS.Load()
	if ts <= rts || ts > s.orc.last {
		return
	}
	if ts != rts+1 {
		s.orc.done[ts] = struct{}{} // out of order: wait for the gap below it to close
		return
	}
	s.advanceLocked(ts)
}

// advanceLocked moves the watermark to rts, then past every consecutive done ts above it, and
// wakes the waiters it satisfies. Caller holds orc.
func (s *Store) advanceLocked(rts uint64) {
	for len(s.orc.done) > 0 {
		if _, ok := s.orc.done[rts+1]; !ok {
			break
		}
		delete(s.orc.done, rts+1)
		rts++
	}
	s.readTS.Store(rts)
	if len(s.orc.waiters) == 0 {
		return
	}
	kept := s.orc.waiters[:0]
	for _, w := range s.orc.waiters {
		if w.ts <= rts {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(s.orc.waiters[len(kept):])
	s.orc.waiters = kept
}

// ReadTS returns the read watermark: every ts <= it is done, so a snapshot at it sees a
// complete prefix of the commit order. It only moves forward.
func (s *Store) ReadTS() uint64 { return s.readTS.Load() }

// WaitVisible blocks until ReadTS() >= ts, or ctx ends (returning ctx.Err()). Commit calls it
// after Done so that the next Begin sees the transaction's writes (read-your-writes). A ts the
// oracle never allocated fails at once with ErrUnknownTS.
func (s *Store) WaitVisible(ctx context.Context, ts uint64) error {
	if s.readTS.Load() >= ts {
		return nil
	}
	s.orc.Lock()
	if s.readTS.Load() >= ts {
		s.orc.Unlock()
		return nil
	}
	if ts > s.orc.last {
		last := s.orc.last
		s.orc.Unlock()
		return fmt.Errorf("%w: WaitVisible(%d), last allocated %d", ErrUnknownTS, ts, last)
	}
	w := waiter{ts: ts, ch: make(chan struct{})}
	s.orc.waiters = append(s.orc.waiters, w)
	s.orc.Unlock()

	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
	}
	// Cancelled: leave the queue. If the watermark got there meanwhile, report success, so the
	// outcome is exactly one of "visible" or "cancelled and not waiting any more".
	s.orc.Lock()
	defer s.orc.Unlock()
	for i, x := range s.orc.waiters {
		if x.ch == w.ch {
			s.orc.waiters = append(s.orc.waiters[:i], s.orc.waiters[i+1:]...)
			return ctx.Err()
		}
	}
	return nil // already woken
}
