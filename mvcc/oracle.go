package mvcc

import "context"

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
	s.doneLocked(ts)
}

func (s *Store) doneLocked(ts uint64) {
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
	s.orc.waiters = wake(s.orc.waiters, rts)
	if len(s.orc.durable) > 0 {
		s.advanceDurableLocked(s.durableTS.Load())
	}
}

// wake closes the channels of the waiters for a ts <= wm and returns the others.
func wake(waiters []waiter, wm uint64) []waiter {
	if len(waiters) == 0 {
		return waiters
	}
	kept := waiters[:0]
	for _, w := range waiters {
		if w.ts <= wm {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	clear(waiters[len(kept):])
	return kept
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
	return s.waitMark(ctx, ts, &s.readTS, &s.orc.waiters, "WaitVisible")
}
