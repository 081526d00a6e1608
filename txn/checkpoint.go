package txn

import (
	"iter"
	"sync"
	"sync/atomic"

	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// checkpointer is the background goroutine that bounds the log and the
// memtable (docs/architecture.md §5). A commit that finds either over its limit kicks it;
// it never runs on the commit path itself.
//
//	commit ──maybeKick──▶ kick (cap 1) ──▶ run(): GC; still over? then if durable:
//	    c = min(GCWatermark, DurableTS)
//	    wal.Checkpoint(c, newest version <= c of each key)   bbolt txs in chunks
//	    store.Flushed(c)   memtable drops them once old readers are gone
//	      (under its limit: FlushedTombstones(c), only the deletions leave)
//
// The memtable limit stays MemtableBytes as long as checkpoints can shrink
// the memtable. It is raised (to twice what is left) only after a run that
// could not: an in-memory database, whose memtable is all there is; a
// snapshot holding the GC watermark where the last checkpoint left it; or a
// reader, open since before the previous run's Flushed, holding back the
// removal. Without the raise every commit would kick a useless run; with it
// raised for any other reason, the memtable would grow to twice its setting
// (a Flushed removal merely waiting for the writes in flight is no reason).
//
// Write stall: committers can install faster than a checkpoint writes
// bbolt, so while a run flushes a full memtable the next one fills behind
// it. A durable database's committer that leaves the memtable more than a
// quarter of MemtableBytes over the limit therefore waits, after its commit
// (durable, visible, locks released), for the end of the running checkpoint
// (or of the one its kick starts): the memtable stays within the limit plus
// MemtableBytes/4 plus what the committers in flight install, instead of
// growing with the writers' lead. (RocksDB and Pebble stall writes on full memtables the
// same way; Badger blocks on its flush queue.) The wait lasts until the end
// of one run: Close waits for the stalled commit, and the checkpointer keeps
// serving kicks until then.
//
//	memtable:  0 ─────── limit ─── limit + MemtableBytes/4 ─────▶
//	                       │ kick         │ commits wait for the run's end
type checkpointer struct {
	db   *DB
	kick chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup
	// memLimit is the memtable size that kicks the next run: MemtableBytes,
	// or twice what the last run left if that run could not shrink it.
	memLimit atomic.Int64
	// mu serializes checkpoints (background and final) and guards flushed.
	mu sync.Mutex
	// flushed: the last run called store.Flushed (or FlushedTombstones), so one pending flush may
	// just be waiting for the readers that overlapped that run.
	flushed bool
	// end guards the channel stalled committers wait on. A leaf: nothing
	// else is acquired while it is held.
	end struct {
		sync.Mutex
		ch chan struct{} // closed, and replaced, when a background run ends
	}
	stalled atomic.Int64 // committers waiting in maybeKick now (tests)
}

func (c *checkpointer) start(db *DB) {
	c.db = db
	c.kick = make(chan struct{}, 1)
	c.quit = make(chan struct{})
	c.end.ch = make(chan struct{})
	c.memLimit.Store(db.cfg.MemtableBytes)
	c.wg.Add(1)
	go c.run()
}

func (c *checkpointer) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kick:
			if err := c.db.checkpointIfOver(); err != nil {
				c.db.cfg.Logger.Warn("txkv: checkpoint failed", "err", err)
			}
			c.end.Lock()
			close(c.end.ch)
			c.end.ch = make(chan struct{})
			c.end.Unlock()
		case <-c.quit:
			return
		}
	}
}

func (c *checkpointer) stop() {
	close(c.quit)
	c.wg.Wait()
}

// over reports whether the log or the memtable is over its limit. Cheap:
// two atomic loads.
func (c *checkpointer) over() bool {
	db := c.db
	if db.store.MemBytes() > c.memLimit.Load() {
		return true
	}
	return db.log != nil && db.log.LogBytes() > db.cfg.CheckpointBytes
}

// stallOver reports whether a committer must wait for a run to end: the
// memtable of a durable database is over the limit by more than a quarter
// of MemtableBytes. (An in-memory database's runs only GC: nothing to wait
// for.)
func (c *checkpointer) stallOver() bool {
	return c.db.log != nil && c.db.store.MemBytes() > c.memLimit.Load()+c.db.cfg.MemtableBytes/4
}

// maybeKick wakes the checkpointer if the log or the memtable is over its
// limit, and stalls the committer if the memtable is far over (see the
// checkpointer).
func (c *checkpointer) maybeKick() {
	if !c.over() {
		return
	}
	var end chan struct{}
	stall := c.stallOver()
	if stall {
		// Taken before the kick: the run it starts, if none is running,
		// closes this channel at its end.
		c.end.Lock()
		end = c.end.ch
		c.end.Unlock()
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
	if !stall {
		return
	}
	c.stalled.Add(1)
	defer c.stalled.Add(-1)
	select {
	case <-end:
	case <-c.quit:
	}
}

// checkpointIfOver is a background run: commits that arrive during a run
// kick the next one, which GC (releasing the run's Flushed once the readers
// it waited for are gone) may have made unnecessary.
func (db *DB) checkpointIfOver() error {
	db.ckpt.mu.Lock()
	defer db.ckpt.mu.Unlock()
	db.store.GC()
	if !db.ckpt.over() {
		return nil
	}
	return db.checkpointLocked()
}

// checkpoint drops versions no snapshot can see and, for a durable
// database, writes into the base bucket the newest version <= the GC
// watermark of every key changed since the last checkpoint, and truncates the
// log up to it. The memtable keeps the flushed versions as a cache unless it
// is over MemtableBytes: then they leave it (once old readers are gone), so
// memory holds recent versions and bbolt the rest.
func (db *DB) checkpoint() error {
	db.ckpt.mu.Lock()
	defer db.ckpt.mu.Unlock()
	db.store.GC()
	return db.checkpointLocked()
}

// checkpointLocked is checkpoint after its GC; the caller holds ckpt.mu.
func (db *DB) checkpointLocked() error {
	c := &db.ckpt
	if db.log == nil {
		c.memLimit.Store(max(db.cfg.MemtableBytes, 2*db.store.MemBytes()))
		return nil
	}
	if err := db.log.Failed(); err != nil {
		// The log refuses writes: report why, as every commit does, rather
		// than a checkpoint that seems to have succeeded.
		c.memLimit.Store(max(db.cfg.MemtableBytes, 2*db.store.MemBytes()))
		return err
	}
	// Pending flushes are released oldest first, so more of them than the
	// last run's own means a reader older than that run is still open.
	blocked := db.store.Stats().PendingFlushes > b2i(c.flushed)
	prev := db.log.CheckpointTS()
	// Only durable versions may reach the base: a version whose log record
	// could still be lost would survive a crash in the base, half of its
	// transaction perhaps not.
	upTo := min(db.store.GCWatermark(), db.store.DurableTS())
	evict := db.store.MemBytes() > db.cfg.MemtableBytes
	if upTo > prev {
		entries := changedSince(prev, db.store.CheckpointEntries(upTo))
		if err := db.log.Checkpoint(upTo, entries); err != nil {
			return err
		}
		db.stats.checkpoints.Add(1)
	}
	switch {
	case evict:
		db.store.Flushed(db.log.CheckpointTS())
	case upTo > prev:
		// The values stay cached, but the deletions just applied to the base
		// need no tombstones in memory: scans would keep stepping over them.
		db.store.FlushedTombstones(upTo)
	}
	c.flushed = evict || upTo > prev
	limit := db.cfg.MemtableBytes
	if blocked || upTo <= prev {
		limit = max(limit, 2*db.store.MemBytes())
	}
	c.memLimit.Store(limit)
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// finalCheckpoint runs at Close so the next Open replays little.
func (db *DB) finalCheckpoint() error {
	if db.log == nil {
		return nil
	}
	return db.checkpoint()
}

// changedSince converts the store's checkpoint entries to the log's, keeping
// only versions newer than the previous checkpoint: older ones are in the
// base already.
func changedSince(prev uint64, entries iter.Seq[mvcc.Entry]) iter.Seq[wal.BaseEntry] {
	return func(yield func(wal.BaseEntry) bool) {
		for e := range entries {
			if e.Version <= prev {
				continue
			}
			if !yield(wal.BaseEntry{Key: e.Key, Value: e.Value, Version: e.Version, Delete: e.Delete}) {
				return
			}
		}
	}
}

// Checkpoint runs a checkpoint now (tests and tools use it). On a database
// whose log failed it returns that failure (ErrLogFailed wrapping the
// cause): nothing can be checkpointed until it is reopened.
func (db *DB) Checkpoint() error {
	if db.isClosed() {
		return wal.ErrClosed
	}
	return db.checkpoint()
}

// Verify reads the whole file and reports damage: a base value or version
// that fails its checksum, a log record that fails its own, malformed meta
// values, and whatever bbolt's consistency check finds (see wal's
// Log.Verify). It returns nil, or an error wrapping wal.ErrCorrupt that
// joins a *wal.CorruptError per damaged entry (at most 100). An in-memory
// database has nothing to verify.
func (db *DB) Verify() error {
	if db.isClosed() {
		return wal.ErrClosed
	}
	if db.log == nil {
		return nil
	}
	return db.log.Verify()
}
