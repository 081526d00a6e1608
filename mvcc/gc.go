package mvcc

import (
	"iter"
)

// GCWatermark returns min(oldest open snapshot's ts, DurableTS()) (and DurableTS <= ReadTS).
// No open or future snapshot can read below it, and it never decreases. A checkpoint must be
// taken at upTo <= GCWatermark().
//
// Why not above DurableTS: GC keeps, per key, the newest version <= the watermark and drops
// the older ones. If that newest version were not durable yet, the version it supersedes could
// be dropped before a checkpoint (which only writes durable versions) wrote it to Base — the
// checkpoint would then write an older version of the key, truncate the log record of the
// dropped one, and a crash that lost the newest would leave the older one beside the rest of
// the dropped version's transaction: a torn transaction. Below DurableTS, whatever supersedes a
// dropped version survives in the log.
func (s *Store) GCWatermark() uint64 {
	return min(s.oldestSnapshot(), s.durableTS.Load())
}

// GC drops the memtable versions no reader can see and returns how many it dropped. For each
// key it keeps every version > GCWatermark plus the newest version <= it, except that:
//   - versions <= the flushed level (Flushed, once its old readers closed) go: Base holds them;
//   - over an EmptyBase, a tombstone that is the newest version <= the watermark goes (with any
//     older version), and a key left without versions leaves the memtable: falling through to
//     an empty base reads "not found", exactly what the tombstone said.
//
// Over a real Base a tombstone stays until a checkpoint has deleted the key from Base.
func (s *Store) GC() (dropped int) {
	s.reg.mu.Lock()
	s.releaseFlushesLocked()
	s.reg.mu.Unlock()
	return s.collect()
}

// Flushed tells the store that Base now holds everything <= upTo (the newest version <= upTo
// of every key, deletions applied). Versions <= upTo may then leave the memtable — but only
// after every reader that pinned an epoch before this call has closed: such a reader may have
// read Base before the checkpoint and may still look for the version in the memtable. Flushed
// does not wait for them: the removal runs now if no such reader is open, otherwise when the
// last one closes (or on a later GC or Flushed call).
func (s *Store) Flushed(upTo uint64) { s.flushed(flushReq{upTo: upTo}) }

// FlushedTombstones is Flushed for deletions only: Base holds everything <= upTo, but the
// memtable keeps the values as a cache. Its tombstones, though, only cost: every scan steps over
// them (a job queue whose claimed rows are deleted would scan all of its history). So a
// tombstone <= upTo that is its key's newest version <= the GC watermark leaves the memtable,
// once the readers that pinned before this call have closed — a reader falls through to Base,
// which no longer has the key: "not found" either way.
func (s *Store) FlushedTombstones(upTo uint64) { s.flushed(flushReq{upTo: upTo, tombs: true}) }

func (s *Store) flushed(req flushReq) {
	s.reg.mu.Lock()
	req.epoch = s.reg.epoch.Load()
	s.reg.mu.pending = append(s.reg.mu.pending, req)
	s.reg.hasPending.Store(true) // before the shards are visited: see unregister
	// Readers from now on read Base only after it holds upTo. A reader that pinned the old
	// epoch did so under its shard lock before releaseFlushesLocked visits that shard, so the
	// visit sees its pin.
	s.reg.epoch.Add(1)
	ready := s.releaseFlushesLocked()
	s.reg.mu.Unlock()
	if ready {
		s.collect()
	}
}

// releaseFlushesLocked raises safeUpTo (and safeTombsUpTo; only the latter for a
// FlushedTombstones) past every pending flush whose epoch has no open reader left, and reports
// whether it did. Caller holds reg.mu.
func (s *Store) releaseFlushesLocked() bool {
	pending := s.reg.mu.pending
	if len(pending) == 0 {
		return false
	}
	oldest := s.oldestPinnedEpoch()
	advanced := false
	for len(pending) > 0 && pending[0].epoch < oldest {
		req := pending[0]
		if req.upTo > s.safeTombsUpTo.Load() {
			s.safeTombsUpTo.Store(req.upTo)
			advanced = true
		}
		if !req.tombs && req.upTo > s.safeUpTo.Load() {
			s.safeUpTo.Store(req.upTo)
			advanced = true
		}
		pending = pending[1:]
	}
	if len(pending) == 0 {
		pending = nil
		s.reg.hasPending.Store(false)
	}
	s.reg.mu.pending = pending
	return advanced
}

// collect runs one GC pass over the memtable with the current watermark and flushed level.
func (s *Store) collect() int {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	wm := s.GCWatermark()
	safe := min(s.safeUpTo.Load(), wm)
	tombsSafe := min(s.safeTombsUpTo.Load(), wm)
	dropped := 0
	var empty [][]byte
	var after []byte
	for {
		// Chains are edited under the read lock: readers tolerate it (atomic pointers, and only
		// versions no reader can need are unlinked); installs are excluded by the lock, other
		// passes by gcMu.
		s.mem.RLock()
		n, last := s.ascendAfterLocked(nil, after, nil, s.opts.GCChunk, func(e memEntry) {
			d, gone := s.trim(e.c, wm, safe, tombsSafe)
			dropped += d
			if gone {
				empty = append(empty, e.key)
			}
		})
		s.mem.RUnlock()
		if n < s.opts.GCChunk {
			break
		}
		after = last
	}
	s.removeEmpty(empty)
	return dropped
}

// trim cuts c after the last version a reader may need and reports how many versions it
// dropped and whether the chain is now empty. Caller holds gcMu and mem (read).
func (s *Store) trim(c *chain, wm, safe, tombsSafe uint64) (dropped int, empty bool) {
	var prev *version // last kept version
	cur := c.head.Load()
	for cur != nil {
		if cur.ts <= safe {
			break // Base holds it (or a newer one <= safe): drop it and everything older
		}
		if cur.ts <= wm {
			// cur is the newest version <= wm: readers stop here.
			if cur.tomb && (s.emptyBase || cur.ts <= tombsSafe) {
				break // "not found" either way: Base lacks the key
			}
			prev, cur = cur, cur.next.Load()
			break
		}
		prev, cur = cur, cur.next.Load()
	}
	if cur == nil {
		return 0, false
	}
	var bytes int64
	for v := cur; v != nil; {
		next := v.next.Load()
		dropped++
		if v == c.first {
			// Its memory lives on in the chain's object (alloc.go), so it stays charged
			// until the key leaves, and it must retain nothing: clear next. A snapshot that
			// reaches an unlinked version stops there (its ts <= wm), so none loads next.
			// CheckpointEntries, reading at an upTo that may be below wm, can: it then sees
			// the chain end, as when it meets the cut at prev below, and omits a version
			// that prev (<= wm, kept) supersedes for every reader.
			v.next.Store(nil)
		} else {
			bytes += int64(len(v.value)) + versionOverhead
		}
		v = next
	}
	if prev == nil {
		c.head.Store(nil)
		empty = true
	} else {
		prev.next.Store(nil)
	}
	s.versions.Add(-int64(dropped))
	s.memBytes.Add(-bytes)
	return dropped, empty
}

// removeEmpty deletes keys whose chain GC emptied, unless an install refilled them meanwhile.
func (s *Store) removeEmpty(keys [][]byte) {
	for len(keys) > 0 {
		n := min(len(keys), s.opts.GCChunk)
		s.mem.Lock()
		for _, k := range keys[:n] {
			e, ok := s.mem.tree.Get(memEntry{key: k})
			if ok && e.c.head.Load() == nil {
				s.mem.tree.Delete(e)
				s.index.deleteLocked(s.index.hash(e.key), e.key)
				s.memBytes.Add(-int64(len(e.key)) - keyOverhead - e.c.firstBytes())
			}
		}
		s.mem.Unlock()
		keys = keys[n:]
	}
}

// CheckpointEntries yields, in key order, for each memtable key with a version <= upTo, the
// newest such version (Delete for a tombstone): what Base must hold after a checkpoint at
// upTo. upTo must be <= GCWatermark(). The memtable is read in chunks, never locked while
// yield runs; entries' slices are immutable and may be retained.
//
// It does not exclude GC (gcMu), so a GC pass at a newer watermark may unlink a key's newest
// version <= upTo while the chunk is read, because a version in (upTo, watermark] superseded it.
// The key is then missing from this checkpoint. That is harmless: the superseding version is
// newer than upTo, so its log record survives the truncation at upTo and it stays in the
// memtable until a later checkpoint writes it; and no reader can see the skipped version (the
// GC watermark passed every open snapshot). Recovery replays the newer record over whatever
// Base holds, which is the same state.
func (s *Store) CheckpointEntries(upTo uint64) iter.Seq[Entry] {
	return func(yield func(Entry) bool) {
		var buf []Entry
		var after []byte
		for {
			buf = buf[:0]
			s.mem.RLock()
			n, last := s.ascendAfterLocked(nil, after, nil, s.opts.GCChunk, func(e memEntry) {
				if v := e.c.visible(upTo); v != nil {
					buf = append(buf, Entry{Key: e.key, Value: v.value, Version: v.ts, Delete: v.tomb})
				}
			})
			s.mem.RUnlock()
			for _, e := range buf {
				if !yield(e) {
					return
				}
			}
			if n < s.opts.GCChunk {
				return
			}
			after = last
		}
	}
}
