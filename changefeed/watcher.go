package changefeed

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"sort"

	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// watcher is one running Watch iteration.
type watcher struct {
	prefix []byte
	wake   chan struct{} // capacity 1: the sequencer's signal that firstMatch is set

	// Guarded by Hub.mu.
	caughtUp   bool   // it has examined every released record up to its last pull
	firstMatch uint64 // while caughtUp: ts of the first matching record released since; 0 if none
}

func (r *record) matches(prefix []byte) bool {
	for i := range r.writes {
		if bytes.HasPrefix(r.writes[i].Key, prefix) {
			return true
		}
	}
	return false
}

// Watch returns the durable committed writes under prefix (nil or empty: every key) in
// commit order, starting at version fromVersion (0 is taken as 1: ts 0 is never a commit).
// The iteration ends when the consumer breaks out, when ctx ends (yielding ctx.Err()), when
// the hub closes (wal.ErrClosed) or on an error: wal.ErrCompacted when the versions it
// needs are no longer retained (in the log, or in an in-memory database's ring), or the
// log's error if it failed. Each range over the result starts afresh at fromVersion.
func (h *Hub) Watch(ctx context.Context, prefix []byte, fromVersion uint64) iter.Seq2[Event, error] {
	prefix = bytes.Clone(prefix)
	if ctx == nil {
		ctx = context.Background()
	}
	fromVersion = max(fromVersion, 1)
	return func(yield func(Event, error) bool) {
		w := h.register(prefix)
		defer h.unregister(w)
		if err := h.serve(ctx, w, fromVersion, yield); err != nil {
			yield(Event{}, err)
		}
	}
}

func (h *Hub) register(prefix []byte) *watcher {
	w := &watcher{prefix: prefix, wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.mu.byPrefix[string(prefix)]
	if g == nil {
		g = make(map[*watcher]struct{})
		h.mu.byPrefix[string(prefix)] = g
		h.updateLengthsLocked()
	}
	g[w] = struct{}{}
	h.mu.watchers++
	return w
}

func (h *Hub) unregister(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.mu.byPrefix[string(w.prefix)]
	delete(g, w)
	if len(g) == 0 {
		delete(h.mu.byPrefix, string(w.prefix))
		h.updateLengthsLocked()
	}
	h.mu.watchers--
}

func (h *Hub) updateLengthsLocked() {
	seen := make(map[int]bool, len(h.mu.byPrefix))
	h.mu.lengths = h.mu.lengths[:0]
	for p := range h.mu.byPrefix {
		if !seen[len(p)] {
			seen[len(p)] = true
			h.mu.lengths = append(h.mu.lengths, len(p))
		}
	}
	sort.Ints(h.mu.lengths)
}

// pull is one step of a watcher at cursor: the matching records of the ring from cursor on,
// and the cursor after them; or logTo > 0, meaning "read the log from cursor to logTo
// first"; or wait, meaning the watcher is caught up and should sleep.
type pull struct {
	recs   []*record
	cursor uint64
	logTo  uint64
	wait   bool
}

func (h *Hub) pull(w *watcher, cursor uint64, recs []*record) (pull, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.closed {
		return pull{}, wal.ErrClosed
	}
	if h.mu.failed != nil {
		return pull{}, h.mu.failed
	}
	if w.caughtUp {
		// Everything released between the last pull and firstMatch was for other prefixes.
		skipTo := h.mu.released + 1
		if w.firstMatch != 0 {
			skipTo = w.firstMatch
		}
		cursor = max(cursor, skipTo)
		w.caughtUp, w.firstMatch = false, 0
	}
	if cursor <= h.mu.horizon {
		if h.tail == nil {
			return pull{}, fmt.Errorf("%w: version %d requested, the in-memory watch ring holds versions above %d (Options.WatchRingEvents)",
				wal.ErrCompacted, cursor, h.mu.horizon)
		}
		return pull{cursor: cursor, logTo: h.mu.horizon}, nil
	}
	live := h.mu.ring[h.mu.start:]
	i := sort.Search(len(live), func(i int) bool { return live[i].ts >= cursor })
	for end := min(len(live), i+scanRecords); i < end && len(recs) < batchRecords; i++ {
		if live[i].matches(w.prefix) {
			recs = append(recs, live[i])
		}
		cursor = live[i].ts + 1
	}
	if i < len(live) {
		return pull{recs: recs, cursor: cursor}, nil
	}
	// Every released record has been examined: from now on the sequencer notes this
	// watcher's first match, so it need not scan what other prefixes churn meanwhile.
	w.caughtUp, w.firstMatch = true, 0
	return pull{recs: recs, cursor: max(cursor, h.mu.released+1), wait: len(recs) == 0}, nil
}

// serve runs one watcher until the consumer stops (nil) or an error ends it.
func (h *Hub) serve(ctx context.Context, w *watcher, cursor uint64, yield func(Event, error) bool) error {
	var buf []*record
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := h.pull(w, cursor, buf[:0])
		if err != nil {
			return err
		}
		if p.logTo != 0 {
			cursor, err = h.catchUp(w, p.cursor, p.logTo, yield)
			if err != nil || cursor == 0 {
				return err
			}
			continue
		}
		for _, r := range p.recs {
			for i := range r.writes {
				if !deliver(r.ts, &r.writes[i], w.prefix, yield) {
					return nil
				}
			}
		}
		clear(p.recs) // do not pin evicted records until the next pull
		buf, cursor = p.recs, p.cursor
		if !p.wait {
			continue
		}
		select {
		case <-w.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-h.closed:
			return wal.ErrClosed
		}
	}
}

// catchUp delivers one chunk of the log from cursor to logTo and returns the next cursor,
// or 0 if the consumer stopped.
func (h *Hub) catchUp(w *watcher, cursor, logTo uint64, yield func(Event, error) bool) (uint64, error) {
	recs, err := h.tail.ReadTail(cursor, logTo, logRecords)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return logTo + 1, nil
	}
	for i := range recs {
		for j := range recs[i].Ops {
			// A log op is a write with the same fields: viewed in place, not copied.
			if !deliver(recs[i].TS, (*mvcc.Write)(&recs[i].Ops[j]), w.prefix, yield) {
				return 0, nil
			}
		}
	}
	return recs[len(recs)-1].TS + 1, nil
}

// deliver yields wr as an event of the commit at ts if it is under prefix, with its own
// copy of the key and value, and reports whether the consumer wants more.
func deliver(ts uint64, wr *mvcc.Write, prefix []byte, yield func(Event, error) bool) bool {
	if !bytes.HasPrefix(wr.Key, prefix) {
		return true
	}
	ev := Event{Version: ts, Deleted: wr.Delete}
	if wr.Delete {
		ev.Key = bytes.Clone(wr.Key)
	} else {
		buf := make([]byte, len(wr.Key)+len(wr.Value))
		n := copy(buf, wr.Key)
		copy(buf[n:], wr.Value)
		ev.Key, ev.Value = buf[:n:n], buf[n:]
	}
	return yield(ev, nil)
}
