package mvcc

import "bytes"

// kv is one entry of an iterator source.
type kv struct {
	key, value []byte
	version    uint64
	tomb       bool // memtable tombstone or overlay delete: hides the key
}

// source is one ordered input of the merge, refilled in chunks. buf holds the current chunk;
// a refill never overwrites slices already handed out (memtable and overlay slices are
// immutable, base copies go to a fresh arena per chunk).
type source struct {
	buf       []kv
	pos       int
	after     []byte // last key fetched; the next chunk starts after it
	started   bool
	exhausted bool // nothing beyond buf
	arenaHint int  // bytes the previous base chunk needed: sizes the next arena
	fill      func(src *source) error
}

// peek returns the current entry, refilling when the chunk is used up; nil at the end.
func (src *source) peek() (*kv, error) {
	for src.pos >= len(src.buf) {
		if src.exhausted {
			return nil, nil
		}
		src.buf = src.buf[:0]
		src.pos = 0
		if err := src.fill(src); err != nil {
			src.exhausted = true
			return nil, err
		}
		src.started = true
	}
	return &src.buf[src.pos], nil
}

// Iterator is an ascending merged view of the memtable, Base and an overlay WriteSet over a
// key range, as seen by one Snapshot. It holds no lock and no Base transaction between calls.
// Key and Value slices stay valid after Next but must not be modified.
//
//	for it := sn.Iter(start, end, ws); it.Next(); { use(it.Key(), it.Value()) }; it.Err()
type Iterator struct {
	sn         *Snapshot
	start, end []byte
	sources    [3]source // overlay, memtable, base: on equal keys the first one wins
	key, value []byte
	version    uint64
	err        error
	closed     bool
}

const (
	srcOverlay = iota
	srcMem
	srcBase
)

// Iter returns an iterator over [start, end) (nil = open) merging, in precedence order, the
// transaction's own writes (overlay, may be nil: its entries shadow, its deletes hide), the
// memtable's newest version <= TS() (tombstones hide) and Base (for keys with no visible
// memtable version). Call Close when done (Next returning false does not require it).
func (sn *Snapshot) Iter(start, end []byte, overlay *WriteSet) *Iterator {
	it := &Iterator{sn: sn, start: start, end: end}
	if sn.closed.Load() {
		it.err = ErrSnapshotClosed
		return it
	}
	if start != nil && end != nil && bytes.Compare(start, end) >= 0 {
		it.closed = true
		return it
	}
	it.sources[srcOverlay].fill = func(src *source) error { return it.fillOverlay(src, overlay) }
	it.sources[srcMem].fill = it.fillMem
	it.sources[srcBase].fill = it.fillBase
	if overlay.Len() == 0 {
		it.sources[srcOverlay].exhausted = true
	}
	if sn.s.emptyBase {
		it.sources[srcBase].exhausted = true
	}
	return it
}

func (it *Iterator) chunk() int { return it.sn.s.opts.ScanChunk }

// resume returns where a source's next chunk starts: (start, nil) first, then (nil, after).
func (it *Iterator) resume(src *source) (start, after []byte) {
	if !src.started {
		return it.start, nil
	}
	return nil, src.after
}

func (it *Iterator) fillMem(src *source) error {
	s := it.sn.s
	start, after := it.resume(src)
	ts := it.sn.ts
	s.mem.RLock()
	n, last := s.ascendAfterLocked(start, after, it.end, it.chunk(), func(e memEntry) {
		if v := e.c.visible(ts); v != nil {
			src.buf = append(src.buf, kv{key: e.key, value: v.value, version: v.ts, tomb: v.tomb})
		}
	})
	s.mem.RUnlock()
	src.after = last
	src.exhausted = n < it.chunk()
	return nil
}

func (it *Iterator) fillOverlay(src *source, ws *WriteSet) error {
	start, after := it.resume(src)
	from := start
	if after != nil {
		from = after
	}
	n := 0
	ws.Range(from, it.end, func(key, value []byte, deleted bool) bool {
		if after != nil && bytes.Equal(key, after) {
			return true
		}
		if n == it.chunk() {
			return false
		}
		n++
		src.after = key
		src.buf = append(src.buf, kv{key: key, value: value, tomb: deleted})
		return true
	})
	src.exhausted = n < it.chunk()
	return nil
}

func (it *Iterator) fillBase(src *source) error {
	start, after := it.resume(src)
	if after != nil {
		start = append(append(make([]byte, 0, len(after)+1), after...), 0) // smallest key > after
	}
	arena := make([]byte, 0, src.arenaHint) // fresh per chunk: handed-out slices stay valid
	n := 0
	err := it.sn.s.base.Scan(start, it.end, it.chunk(), func(key, value []byte, version uint64) bool {
		if n == it.chunk() {
			return false
		}
		n++
		off := len(arena)
		arena = append(arena, key...)
		arena = append(arena, value...)
		k := arena[off : off+len(key) : off+len(key)]
		v := arena[off+len(key) : len(arena) : len(arena)]
		src.buf = append(src.buf, kv{key: k, value: v, version: version})
		return true
	})
	if err != nil {
		return err
	}
	// Re-slice from the final arena (appends may have moved it), so the chunk pins one array.
	src.arenaHint = len(arena)
	off := 0
	for i := len(src.buf) - n; i < len(src.buf); i++ {
		e := &src.buf[i]
		kl, vl := len(e.key), len(e.value)
		e.key = arena[off : off+kl : off+kl]
		e.value = arena[off+kl : off+kl+vl : off+kl+vl]
		off += kl + vl
	}
	if n > 0 {
		src.after = src.buf[len(src.buf)-1].key
	}
	src.exhausted = n < it.chunk()
	return nil
}

// Next advances to the next visible key; false at the end or on error (see Err).
func (it *Iterator) Next() bool {
	if it.err != nil || it.closed {
		return false
	}
	if it.sn.closed.Load() {
		it.err = ErrSnapshotClosed
		return false
	}
	for {
		var heads [3]*kv
		var minKey []byte
		have := false
		for i := range it.sources {
			h, err := it.sources[i].peek()
			if err != nil {
				it.err = err
				return false
			}
			heads[i] = h
			if h != nil && (!have || bytes.Compare(h.key, minKey) < 0) {
				minKey, have = h.key, true
			}
		}
		if !have {
			return false
		}
		var pick kv
		picked := -1
		for i, h := range heads {
			if h == nil || !bytes.Equal(h.key, minKey) {
				continue
			}
			if picked < 0 {
				pick, picked = *h, i
			}
			it.sources[i].pos++ // shadowed entries of lower precedence are consumed too
		}
		if picked == srcMem {
			it.sn.note(pick.version) // a tombstone hides a key: it decided the read too
		}
		if pick.tomb {
			continue
		}
		if picked == srcBase && pick.version > it.sn.ts {
			it.err = ErrSnapshotTooOld
			return false
		}
		it.key, it.value, it.version = pick.key, pick.value, pick.version
		return true
	}
}

// Key returns the current key.
func (it *Iterator) Key() []byte { return it.key }

// Value returns the current value.
func (it *Iterator) Value() []byte { return it.value }

// Version returns the current entry's commit ts (0 for an entry of the overlay).
func (it *Iterator) Version() uint64 { return it.version }

// Err returns the error that ended the iteration, if any.
func (it *Iterator) Err() error { return it.err }

// Close ends the iteration; later Next calls return false. Idempotent.
func (it *Iterator) Close() {
	it.closed = true
	for i := range it.sources {
		it.sources[i].buf = nil
	}
}
