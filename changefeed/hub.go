package changefeed

import (
	"context"
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

// Defaults of the ring's bounds (Config.RingEvents, Config.RingBytes).
const (
	DefaultRingEvents = 8192     // events the ring keeps
	DefaultRingBytes  = 32 << 20 // key and value bytes the ring keeps
)

// Watermark is the engine's durable watermark (mvcc.Store implements it): every ts at or
// below DurableTS is done — committed or aborted — and durable.
type Watermark interface {
	DurableTS() uint64
	// WaitDurable returns nil once DurableTS() >= ts, the log's error if it fails first,
	// or ctx.Err().
	WaitDurable(ctx context.Context, ts uint64) error
}

// Tail reads the log's retained tail (wal.Log implements it): the committed records with
// from <= ts <= to, in ts order, at most maxRecords of them; an error wrapping
// wal.ErrCompacted if the log no longer holds every record from on.
type Tail interface {
	ReadTail(from, to uint64, maxRecords int) ([]wal.Record, error)
}

// Config is what the hub needs from the engine.
type Config struct {
	Watermark Watermark // required
	Tail      Tail      // nil for an in-memory database: what left the ring is ErrCompacted
	// Horizon is where history ends: every commit with ts <= Horizon happened before the
	// hub started (the read watermark of the recovered store) and is served from Tail.
	Horizon    uint64
	RingEvents int   // events the ring keeps; 0: DefaultRingEvents
	RingBytes  int64 // key and value bytes the ring keeps; 0: DefaultRingBytes
}

// Bounds of one pull of a watcher under Hub.mu.
const (
	batchRecords = 128  // matching records taken per pull
	scanRecords  = 4096 // records examined per pull, matching or not
	logRecords   = 256  // records read from the log per catch-up read
)

// record is one committed transaction's writes. The writes are the engine's own buffers
// (mvcc.WriteSet copies keys and values in and never writes them again) or a decoded log
// record; either way they are never modified, so watchers share them.
type record struct {
	ts     uint64
	writes []mvcc.Write
	size   int64 // bytes of keys and values
}

// Hub sequences published commits into the ring and serves watchers from it. The engine
// calls Publish for each commit and Close once no commit can publish any more; consumers
// call Watch.
type Hub struct {
	mark      Watermark
	tail      Tail // nil for an in-memory database
	maxEvents int
	maxBytes  int64

	kick   chan struct{}      // capacity 1: Publish tells the sequencer there is work
	quit   context.Context    // cancelled by Close: the sequencer stops
	stop   context.CancelFunc //
	done   chan struct{}      // closed when the sequencer has exited
	closed chan struct{}      // closed by Close: sleeping watchers return wal.ErrClosed

	// mu protects the pending records, the ring, the watcher index and the flags below.
	mu struct {
		sync.Mutex
		pending  []*record // published, not yet released; sorted by ts
		ring     []*record // released records in ts order; ring[start:] are live
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

// New starts a hub and its sequencer goroutine.
func New(cfg Config) *Hub {
	h := &Hub{
		mark:      cfg.Watermark,
		tail:      cfg.Tail,
		maxEvents: cfg.RingEvents,
		maxBytes:  cfg.RingBytes,
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
		closed:    make(chan struct{}),
	}
	if h.maxEvents == 0 {
		h.maxEvents = DefaultRingEvents
	}
	if h.maxBytes == 0 {
		h.maxBytes = DefaultRingBytes
	}
	h.quit, h.stop = context.WithCancel(context.Background())
	h.mu.horizon = cfg.Horizon
	h.mu.released = cfg.Horizon
	h.mu.byPrefix = make(map[string]map[*watcher]struct{})
	go h.run()
	return h
}

// Close stops the sequencer and ends every watcher's wait with wal.ErrClosed.
func (h *Hub) Close() {
	h.mu.Lock()
	h.mu.closed = true
	h.mu.Unlock()
	close(h.closed)
	h.stop()
	<-h.done
}

// Publish hands a commit's writes to the hub; the hub keeps them, unmodified, while the
// ring holds them. The engine calls it after the writes are installed and before ts is
// marked done — see "Ordering" in the package doc. It never blocks on a watcher.
func (h *Hub) Publish(ts uint64, writes []mvcc.Write) {
	r := &record{ts: ts, writes: writes}
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

// Watchers returns the number of running Watch iterations.
func (h *Hub) Watchers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mu.watchers
}

// run is the sequencer: it releases pending records as the watermark passes them.
func (h *Hub) run() {
	defer close(h.done)
	for {
		select {
		case <-h.kick:
		case <-h.quit.Done():
			return
		}
		for next := h.release(); next != 0; next = h.release() {
			// Wait for the oldest pending commit to be durable (and every ts below it).
			if err := h.mark.WaitDurable(h.quit, next); err != nil {
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
func (h *Hub) fail(err error) {
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
// returns the ts of the oldest record still pending, 0 if none.
func (h *Hub) release() uint64 {
	wm := h.mark.DurableTS()
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

func (h *Hub) appendRingLocked(r *record) {
	h.mu.ring = append(h.mu.ring, r)
	h.mu.events += len(r.writes)
	h.mu.bytes += r.size
	if h.mu.watchers > 0 {
		h.notifyLocked(r)
	}
}

// notifyLocked wakes the caught-up watchers whose prefix r writes under, through the prefix
// index: one map lookup per written key and distinct prefix length.
func (h *Hub) notifyLocked(r *record) {
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
func (h *Hub) evictLocked() {
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
