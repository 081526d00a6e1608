package txn

import (
	"iter"
	"sync"
	"sync/atomic"

	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// checkpointer is the background goroutine that bounds the log and the
// memtable (DESIGN §5). A commit that finds either over its limit kicks it;
// it never runs on the commit path itself.
//
//	commit ──maybeKick──▶ kick (cap 1) ──▶ run(): GC, then if durable:
//	    c = GCWatermark
//	    wal.Checkpoint(c, newest version <= c of each key)   one bbolt tx
//	    store.Flushed(c)   memtable drops them once old readers are gone
type checkpointer struct {
	db   *DB
	kick chan struct{}
	quit chan struct{}
	wg   sync.WaitGroup
	// memLimit is the memtable size that kicks the next run: MemtableBytes,
	// or twice what the last run left if that is more (live data that GC
	// cannot drop must not make every commit kick a run).
	memLimit atomic.Int64
	// mu serializes checkpoints (background and final).
	mu sync.Mutex
}

func (c *checkpointer) start(db *DB) {
	c.db = db
	c.kick = make(chan struct{}, 1)
	c.quit = make(chan struct{})
	c.memLimit.Store(db.cfg.MemtableBytes)
	c.wg.Add(1)
	go c.run()
}

func (c *checkpointer) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.kick:
			if err := c.db.checkpoint(); err != nil {
				c.db.cfg.Logger.Warn("txkv: checkpoint failed", "err", err)
			}
		case <-c.quit:
			return
		}
	}
}

func (c *checkpointer) stop() {
	close(c.quit)
	c.wg.Wait()
}

// maybeKick wakes the checkpointer if the log or the memtable is over its
// limit. Cheap: two atomic loads.
func (c *checkpointer) maybeKick() {
	db := c.db
	over := db.store.MemBytes() > c.memLimit.Load()
	if db.log != nil && db.log.LogBytes() > db.cfg.CheckpointBytes {
		over = true
	}
	if !over {
		return
	}
	select {
	case c.kick <- struct{}{}:
	default:
	}
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
	if db.log == nil || db.log.Failed() != nil {
		db.ckpt.memLimit.Store(max(db.cfg.MemtableBytes, 2*db.store.MemBytes()))
		return nil
	}
	prev := db.log.CheckpointTS()
	upTo := db.store.GCWatermark()
	evict := db.store.MemBytes() > db.cfg.MemtableBytes
	if upTo > prev {
		entries := changedSince(prev, db.store.CheckpointEntries(upTo))
		if err := db.log.Checkpoint(upTo, entries); err != nil {
			return err
		}
		db.stats.checkpoints.Add(1)
	}
	if evict {
		db.store.Flushed(db.log.CheckpointTS())
	}
	db.ckpt.memLimit.Store(max(db.cfg.MemtableBytes, 2*db.store.MemBytes()))
	return nil
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

// Checkpoint runs a checkpoint now (tests and tools use it).
func (db *DB) Checkpoint() error {
	if db.isClosed() {
		return wal.ErrClosed
	}
	return db.checkpoint()
}
