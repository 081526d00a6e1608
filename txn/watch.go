package txn

// Watch: change streams over the commit history (architecture §5; MongoDB's change streams, etcd's
// watch, Badger's Subscribe).
//
// # The contract
//
// A watcher names a key prefix and a start version; it receives one Event per write of a
// committed transaction under the prefix, in commit-timestamp order, from that version on,
// with no gaps: every commit with a ts >= the start that wrote under the prefix is delivered,
// each write exactly once, and nothing that did not commit. The resume token is just a
// version: after Event e, resuming at e.Version+1 continues exactly where the stream stopped.
// A slow watcher never slows a commit down.
//
// # Ordering: why records wait in "pending"
//
// Commit timestamps are taken in one order and commits finish in another: T5 may install
// and be done while T4 is still validating. Delivering T5 at once would break the order (T4
// would come later) or lose T4. And a commit is visible before it is durable (the commit
// protocol releases its locks before the fsync), while a watcher must only ever be told of
// what a crash cannot take back. The durable watermark (mvcc's DurableTS) answers both:
// every ts <= it is done — committed or aborted — and durable. So each commit hands its
// record to the hub *before* it marks its ts done (Install → publish → Done), and a single
// sequencer goroutine moves records from pending into the ring once their ts is <= the
// durable watermark: at that point every committed ts below them has been published too, so
// the ring receives records in ts order with no gaps, all of them durable. (Published after
// Done instead, a commit could be done and below the watermark yet not in pending, and
// nothing could tell it from an abort.) If the log fails, pending records are dropped and
// every watcher ends with the log's error: they will never be durable.
//
//	committers          hub.mu                                         watchers (own goroutines)
//	──────────          ──────                                         ────────────────────────
//	T5 publish ─┐   pending (sorted by ts)       ring (ts order, bounded)
//	T4 publish ─┼─▶ [4 5 7] ──sequencer: ts <= DurableTS─▶ [.. 1 2 4 5] ◀── scan from cursor
//	T7 publish ─┘             (WaitDurable for the       ▲         │       (batch of matches)
//	                           smallest pending ts)  horizon    released
//	                                                     │
//	                        older records: the log (file DBs) or ErrCompacted (in memory)
//
// The commit path pays one short critical section (a sorted insert, usually at the end)
// and a non-blocking send; it never waits for a watcher.
//
// # Watchers: pull, not push
//
// A watcher has no goroutine and no queue of its own. Its iterator runs in the consumer's
// goroutine and pulls batches: under hub.mu it scans the ring from its cursor (the next ts
// it needs) and takes references to the matching records, then copies their events out and
// yields them with no lock held. Records in the ring are immutable, so many watchers share
// them. A watcher that falls behind the ring — its cursor is at or below the ring's horizon
// (the newest ts evicted) — catches up from the log (wal.ReadTail, which holds every commit
// above the log's own horizon) and returns to the ring; an in-memory database has no log,
// so it gets ErrCompacted, as it does for a start version older than the ring.
//
// # Many idle watchers cost the commit path nothing per watcher
//
// A watcher that has scanned everything released is "caught up" and sleeps on its wake
// channel. The sequencer finds the watchers a record concerns through a prefix index
// (prefix → watchers, and the distinct prefix lengths in use): for each written key it
// looks up key[:n] for each length n, so its cost grows with the number of distinct prefix
// lengths, not with the number of watchers. It records in each matching caught-up watcher
// the ts of the first record released for it (firstMatch) and wakes it. A caught-up
// watcher that wakes jumps straight to firstMatch — every record released between its last
// scan and firstMatch was for other prefixes — so a watcher on a quiet prefix is never
// reported compacted because other keys churned through the ring.
//
// Lock order: Tx.mu → watchHub.mu (publish runs inside Commit). Nothing blocking happens
// under watchHub.mu: no I/O, no user code, only non-blocking sends.

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"sort"
	"sync"

	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// Event is one write of a committed transaction, as Watch delivers it. Version is the
// commit timestamp (the key's version after the write); the writes of one transaction share
// it and come in key order. Deleted events have a nil Value. Key and Value are the caller's.
type Event struct {
	Key, Value []byte
	Version    uint64
	Deleted    bool
}

// Defaults of the Watch options in Config.
const (
	DefaultWatchRingEvents    = 8192     // events the ring keeps
	DefaultWatchRingBytes     = 32 << 20 // key and value bytes the ring keeps
	DefaultWatchRetainRecords = 10000    // log records kept behind the checkpoint
)

// Bounds of one pull of a watcher under hub.mu.
const (
	watchBatchRecords = 128  // matching records taken per pull
	watchScanRecords  = 4096 // records examined per pull, matching or not
	watchLogRecords   = 256  // records read from the log per catch-up read
)

// watchRecord is one committed transaction's writes. The writes are the transaction's own
// buffers (mvcc.WriteSet copies keys and values in and never writes them again) or a decoded
// log record; either way they are never modified, so watchers share them.
type watchRecord struct {
	ts     uint64
	writes []mvcc.Write
	size   int64 // bytes of keys and values
}

func (r *watchRecord) matches(prefix []byte) bool {
	for i := range r.writes {
		if bytes.HasPrefix(r.writes[i].Key, prefix) {
			return true
		}
	}
	return false
}

// watcher is one running Watch iteration.
type watcher struct {
	prefix []byte
	wake   chan struct{} // capacity 1: the sequencer's signal that firstMatch is set

	// Guarded by watchHub.mu.
	caughtUp   bool   // it has examined every released record up to its last pull
	firstMatch uint64 // while caughtUp: ts of the first matching record released since; 0 if none
}

// watchHub sequences published commits into the ring and serves watchers from it.
type watchHub struct {
	store     *mvcc.Store
	log       *wal.Log // nil for an in-memory database
	maxEvents int
	maxBytes  int64

	kick   chan struct{}      // capacity 1: publish tells the sequencer there is work
	quit   context.Context    // cancelled by close: the sequencer stops
	stop   context.CancelFunc //
	done   chan struct{}      // closed when the sequencer has exited
	closed chan struct{}      // closed by close: sleeping watchers return ErrClosed

	// mu protects the pending records, the ring, the watcher index and the flags below.
	mu struct {
		sync.Mutex
		pending  []*watchRecord // published, not yet released; sorted by ts
		ring     []*watchRecord // released records in ts order; ring[start:] are live
		start    int
		events   int    // writes in ring[start:]
		bytes    int64  // key and value bytes in ring[start:]
		horizon  uint64 // every commit with horizon < ts <= released is in ring[start:]
		released uint64 // every commit with ts <= released has left pending
		byPrefix map[string]map[*watcher]struct{}
		lengths  []int // distinct prefix lengths in byPrefix, ascending
		watchers int
		closed   bool
		failed   error // the log failed: every pull returns it
	}
}

// newWatchHub starts the hub of db, whose store has been recovered: everything up to the
// watermark is history, served from the log.
func newWatchHub(db *DB) *watchHub {
	h := &watchHub{
		store:     db.store,
		log:       db.log,
		maxEvents: db.cfg.WatchRingEvents,
		maxBytes:  db.cfg.WatchRingBytes,
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		closed:    make(chan struct{}),
	}
	h.quit, h.stop = context.WithCancel(context.Background())
	h.mu.horizon = db.store.ReadTS()
	h.mu.released = h.mu.horizon
	h.mu.byPrefix = make(map[string]map[*watcher]struct{})
	go h.run()
	return h
}

// close stops the sequencer and ends every watcher's wait with ErrClosed. The DB calls it
// once no commit can publish any more.
func (h *watchHub) close() {
	h.mu.Lock()
	h.mu.closed = true
	h.mu.Unlock()
	close(h.closed)
	h.stop()
	<-h.done
}

// publish hands a commit's writes to the hub. Commit calls it after Install and before
// Done(ts) — see "Ordering" above. It never blocks on a watcher.
func (h *watchHub) publish(ts uint64, writes []mvcc.Write) {
	r := &watchRecord{ts: ts, writes: writes}
	for i := range writes {
		r.size += int64(len(writes[i].Key) + len(writes[i].Value))
	}
	h.mu.Lock()
	if h.mu.failed != nil {
		h.mu.Unlock()
		return
	}
	p := append(h.mu.pending, r)
	for i := len(p) - 1; i > 0 && p[i-1].ts > ts; i-- { // usually already in place
		p[i-1], p[i] = p[i], p[i-1]
	}
	h.mu.pending = p
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run is the sequencer: it releases pending records as the watermark passes them.
func (h *watchHub) run() {
	defer close(h.done)
	for {
		select {
		case <-h.kick:
		case <-h.quit.Done():
			return
		}
		for next := h.release(); next != 0; next = h.release() {
			// Wait for the oldest pending commit to be durable (and every ts below it).
			if err := h.store.WaitDurable(h.quit, next); err != nil {
				if h.quit.Err() == nil {
					h.fail(err) // the log failed: these commits will never be durable
				}
				return
			}
		}
	}
}

// fail ends the stream for every watcher with err (the log failed): what is pending was
// installed but will never be durable, so it must never be delivered.
func (h *watchHub) fail(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mu.failed = err
	clear(h.mu.pending)
	h.mu.pending = h.mu.pending[:0]
	for _, g := range h.mu.byPrefix {
		for w := range g {
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// release moves the pending records at or below the durable watermark into the ring and
// returns the ts of the oldest record still pending, 0 if none. Watch delivers only durable
// commits: a consumer acts on what it receives, so nothing a crash could still take back.
func (h *watchHub) release() uint64 {
	wm := h.store.DurableTS()
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.mu.pending {
		if r.ts > wm {
			break
		}
		h.appendRingLocked(r)
		n++
	}
	if n > 0 {
		rest := copy(h.mu.pending, h.mu.pending[n:])
		clear(h.mu.pending[rest:])
		h.mu.pending = h.mu.pending[:rest]
	}
	h.mu.released = max(h.mu.released, wm)
	h.evictLocked()
	if len(h.mu.pending) == 0 {
		return 0
	}
	return h.mu.pending[0].ts
}

func (h *watchHub) appendRingLocked(r *watchRecord) {
	h.mu.ring = append(h.mu.ring, r)
	h.mu.events += len(r.writes)
	h.mu.bytes += r.size
	if h.mu.watchers > 0 {
		h.notifyLocked(r)
	}
}

// notifyLocked wakes the caught-up watchers whose prefix r writes under, through the prefix
// index: one map lookup per written key and distinct prefix length.
func (h *watchHub) notifyLocked(r *watchRecord) {
	for i := range r.writes {
		key := r.writes[i].Key
		for _, n := range h.mu.lengths {
			if n > len(key) {
				break
			}
			for w := range h.mu.byPrefix[string(key[:n])] {
				if !w.caughtUp || w.firstMatch != 0 {
					continue
				}
				w.firstMatch = r.ts
				select {
				case w.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}

// evictLocked drops the oldest records while the ring is over its bounds, always keeping
// the newest one, and moves the horizon past them.
func (h *watchHub) evictLocked() {
	for len(h.mu.ring)-h.mu.start > 1 && (h.mu.events > h.maxEvents || h.mu.bytes > h.maxBytes) {
		r := h.mu.ring[h.mu.start]
		h.mu.ring[h.mu.start] = nil
		h.mu.start++
		h.mu.events -= len(r.writes)
		h.mu.bytes -= r.size
		h.mu.horizon = r.ts
	}
	// Slide the live records down once the dead prefix is the larger half: amortized O(1).
	if h.mu.start > 64 && h.mu.start > len(h.mu.ring)/2 {
		n := copy(h.mu.ring, h.mu.ring[h.mu.start:])
		clear(h.mu.ring[n:])
		h.mu.ring = h.mu.ring[:n]
		h.mu.start = 0
	}
}

func (h *watchHub) register(prefix []byte) *watcher {
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

func (h *watchHub) unregister(w *watcher) {
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

func (h *watchHub) updateLengthsLocked() {
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
	recs   []*watchRecord
	cursor uint64
	logTo  uint64
	wait   bool
}

func (h *watchHub) pull(w *watcher, cursor uint64, recs []*watchRecord) (pull, error) {
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
		if h.log == nil {
			return pull{}, fmt.Errorf("%w: version %d requested, the in-memory watch ring holds versions above %d (Options.WatchRingEvents)",
				wal.ErrCompacted, cursor, h.mu.horizon)
		}
		return pull{cursor: cursor, logTo: h.mu.horizon}, nil
	}
	live := h.mu.ring[h.mu.start:]
	i := sort.Search(len(live), func(i int) bool { return live[i].ts >= cursor })
	for end := min(len(live), i+watchScanRecords); i < end && len(recs) < watchBatchRecords; i++ {
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

// Watchers returns the number of running Watch iterations.
func (db *DB) Watchers() int {
	db.watch.mu.Lock()
	defer db.watch.mu.Unlock()
	return db.watch.mu.watchers
}

// Watch returns the committed writes under prefix (nil or empty: every key) in commit
// order, starting at version fromVersion, or, for 0, after the commits visible now. The
// iteration ends when the consumer breaks out, when ctx ends (yielding ctx.Err()), when the
// DB closes (wal.ErrClosed) or on an error: wal.ErrCompacted when the versions it needs are
// no longer retained (in the log behind the checkpoint, or in an in-memory database's ring).
// To resume after the last event e the consumer processed in full, Watch from e.Version+1.
// Each range over the result starts afresh at the same version.
func (db *DB) Watch(ctx context.Context, prefix []byte, fromVersion uint64) iter.Seq2[Event, error] {
	prefix = bytes.Clone(prefix)
	if ctx == nil {
		ctx = context.Background()
	}
	if fromVersion == 0 {
		fromVersion = db.store.ReadTS() + 1
	}
	return func(yield func(Event, error) bool) {
		if db.isClosed() {
			yield(Event{}, wal.ErrClosed)
			return
		}
		w := db.watch.register(prefix)
		defer db.watch.unregister(w)
		if err := db.watch.serve(ctx, w, fromVersion, yield); err != nil {
			yield(Event{}, err)
		}
	}
}

// serve runs one watcher until the consumer stops (nil) or an error ends it.
func (h *watchHub) serve(ctx context.Context, w *watcher, cursor uint64, yield func(Event, error) bool) error {
	var buf []*watchRecord
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
			if !deliver(r.ts, r.writes, w.prefix, yield) {
				return nil
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
func (h *watchHub) catchUp(w *watcher, cursor, logTo uint64, yield func(Event, error) bool) (uint64, error) {
	recs, err := h.log.ReadTail(cursor, logTo, watchLogRecords)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 {
		return logTo + 1, nil
	}
	for i := range recs {
		if !deliver(recs[i].TS, opsToWrites(recs[i].Ops), w.prefix, yield) {
			return 0, nil
		}
	}
	return recs[len(recs)-1].TS + 1, nil
}

// deliver yields the events of one commit under prefix, each with its own copy of the key
// and value, and reports whether the consumer wants more.
func deliver(ts uint64, writes []mvcc.Write, prefix []byte, yield func(Event, error) bool) bool {
	for i := range writes {
		wr := &writes[i]
		if !bytes.HasPrefix(wr.Key, prefix) {
			continue
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
		if !yield(ev, nil) {
			return false
		}
	}
	return true
}
