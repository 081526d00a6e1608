package txkv

import (
	"context"
	"fmt"
	"io"

	"github.com/txkv/txkv/engine"
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/txn"
)

// DB is an open txkv database. It is safe for concurrent use.
//
// A DB runs over one of two engines (see package engine): the local one, in
// this process (Open), called directly; or another engine (OpenEngine), such
// as the nested module etcdkv's, called through engine.Engine. Exactly one
// of e and x is set.
type DB struct {
	e *txn.DB
	x engine.Engine
}

// OpenEngine returns a DB that runs every call over e: the constructor
// another engine's package calls (etcdkv.Open does) to give its users the
// same *DB API. The DB owns e: Close closes it. What e does not support
// fails with an error wrapping ErrNotSupported; introspection e does not
// offer (engine.Inspector) reports nothing.
func OpenEngine(e engine.Engine) *DB { return &DB{x: e} }

// Open opens the database file at path, creating it (mode 0600) if needed,
// and recovers it: the log records after the last checkpoint are replayed.
// path "" opens an in-memory database: nothing is durable. opts nil means
// DefaultOptions().
//
// Errors say what is wrong: a file this process has open already fails at
// once with ErrInUse, one another process holds fails with ErrInUse after
// about a second (bbolt's file lock); a directory, a missing parent
// directory or a permission problem fail with the system's reason
// (errors.Is: syscall.EISDIR, fs.ErrNotExist, fs.ErrPermission); only a
// file that is a damaged database fails with ErrCorrupt.
//
// A new database file is 16 MiB on disk from its first commit on, however
// little it holds: bbolt grows files in 16 MiB steps (its AllocSize) so that
// a growing database rarely has to extend and re-map the file. The space is
// reused as data arrives; a checkpoint never shrinks the file.
func Open(path string, opts *Options) (*DB, error) {
	e, err := txn.Open(path, opts)
	if err != nil {
		return nil, err
	}
	return &DB{e: e}, nil
}

// Close rolls back running transactions (their next call returns ErrClosed),
// waits for commits in flight and background work, checkpoints and closes
// the file. Later calls return ErrClosed.
func (db *DB) Close() error {
	if db.x != nil {
		return db.x.Close()
	}
	return db.e.Close()
}

// Begin starts a transaction bound to ctx, as database/sql's BeginTx:
// cancelling ctx ends its lock waits with ctx.Err() and rolls it back.
// opts nil means the DB's defaults. The caller must Commit or Rollback.
func (db *DB) Begin(ctx context.Context, opts *TxOptions) (*Tx, error) {
	if db.x != nil {
		t, err := db.x.Begin(ctx, opts)
		if err != nil {
			return nil, err
		}
		return &Tx{x: &foreignTx{t}}, nil
	}
	t, err := db.e.Begin(ctx, opts)
	if err != nil {
		return nil, err
	}
	return newTx(t), nil
}

// Update runs fn in a read-write transaction and commits it, retrying
// retryable errors (conflicts, deadlocks) with backoff per the retry policy.
// An error or a panic in fn rolls back (the panic is re-raised); Commit and
// Rollback inside fn return ErrTxManaged.
func (db *DB) Update(ctx context.Context, opts *TxOptions, fn func(tx *Tx) error) error {
	if db.x != nil {
		return db.x.Update(ctx, opts, wrapFn(fn))
	}
	if fn == nil {
		return db.e.Update(ctx, opts, nil)
	}
	return db.e.Update(ctx, opts, func(t *txn.Tx) error { return fn(newTx(t)) })
}

// View runs fn in a read-only transaction that reads a consistent snapshot
// and never validates or waits.
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	if db.x != nil {
		return db.x.View(ctx, wrapFn(fn))
	}
	if fn == nil {
		return db.e.View(ctx, nil)
	}
	return db.e.View(ctx, func(t *txn.Tx) error { return fn(newTx(t)) })
}

// Get reads one key's latest committed value (ErrNotFound if absent).
func (db *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	if db.x != nil {
		return db.x.Get(ctx, key)
	}
	return db.e.Get(ctx, key)
}

// Put writes one key in its own durable transaction.
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	if db.x != nil {
		return db.x.Put(ctx, key, value)
	}
	return db.e.Put(ctx, key, value)
}

// Delete removes one key in its own durable transaction.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	if db.x != nil {
		return db.x.Delete(ctx, key)
	}
	return db.e.Delete(ctx, key)
}

// CompareAndSwap sets key to new if its value is old (old nil: if absent;
// new nil: delete), atomically, and reports whether it did.
func (db *DB) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	if db.x != nil {
		return db.x.CompareAndSwap(ctx, key, old, new)
	}
	return db.e.CompareAndSwap(ctx, key, old, new)
}

// Increment atomically adds delta to the 8-byte big-endian int64 counter at
// key (absent: 0) and returns the new value.
func (db *DB) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	if db.x != nil {
		return db.x.Increment(ctx, key, delta)
	}
	return db.e.Increment(ctx, key, delta)
}

// Stats are the contention and storage counters (like sql.DBStats).
//
// Fields (txn.Stats):
//
//	Commits           uint64                   // transactions committed (including read-only ones)
//	Aborts            uint64                   // transactions rolled back, for any reason
//	Conflicts         uint64                   // validation failures (ErrConflict)
//	Deadlocks         uint64                   // deadlock victims
//	LockTimeouts      uint64                   // lock waits that timed out
//	LockWaits         uint64                   // lock requests that had to wait
//	Retries           uint64                   // Update attempts after the first
//	NotAvailable      uint64                   // NOWAIT / SKIP LOCKED requests refused
//	VersionMismatches uint64                   // PutIfVersion refusals (the guide's VersionMismatchMonitor)
//	AbortsByReason    map[string]uint64        // rollback, conflict, deadlock, timeout, nowait, cancelled, log-failed
//	ByStrategy        map[string]StrategyStats // by the strategy asked for
//	// ConflictRate is the share of read-write attempts of the last 10 s that
//	// ended in a conflict or as a deadlock victim (Adaptive steers by it).
//	ConflictRate float64
//	// HybridFailRate is Hybrid's slow average of failed optimistic first
//	// attempts; over 10%, HybridStartsPessimistic is set and new Hybrid
//	// Updates start pessimistic (with optimistic probe bursts now and then).
//	HybridFailRate          float64
//	HybridStartsPessimistic bool
//	// AdaptiveMode is how Adaptive transactions run now: "mocc" (hot keys
//	// locked at read time), "optimistic" or "pessimistic" — the steering's
//	// current choice, or the fixed end AdaptiveAlways or AdaptiveNever
//	// selects.
//	AdaptiveMode      string
//	Reads, Writes     uint64  // key reads and writes made inside transactions
//	ReadWriteRatio    float64 // Reads / Writes (0 with no writes)
//	MeanTxTime        time.Duration
//	LockWaitTime      time.Duration // total time spent waiting for locks
//	LockWaitHistogram []HistogramBucket
//	WALBatches        uint64  // group-commit batches written
//	WALRecords        uint64  // commit records written
//	MeanBatchSize     float64 // records per batch
//	// WALQueued is the number of commit records enqueued and waiting for the
//	// next batch: installed and visible, not yet durable (their committers
//	// wait). The batch being written is not counted.
//	WALQueued     int
//	Fsyncs        uint64
//	Checkpoints   uint64
//	MemtableBytes int64
//	ReadTS        uint64 // the read watermark: commits at or below it are visible
//	DurableTS     uint64 // the durable watermark: commits at or below it are also durable
//	// DurabilityWaits counts readers (View, DB.Get, read-only commits, …) that saw a
//	// version above DurableTS and waited for it before returning.
//	DurabilityWaits uint64
type Stats = txn.Stats

// Stats returns the current counters.
func (db *DB) Stats() Stats {
	if db.x != nil {
		return db.x.Stats()
	}
	return db.e.Stats()
}

// LockInfo is one holder or waiter of a lock, as Locks reports it.
//
// Fields (lockmgr.LockInfo):
//
//	TxID     uint64
//	Label    string
//	Key, End []byte
//	Range    bool
//	Mode     Mode
//	Granted  bool
//	// Since is when the wait began (waiters) or when the lock was granted
//	// after a wait. It is zero for a lock granted at once: like PostgreSQL's
//	// pg_locks.waitstart it times waits, and reading the clock would cost a
//	// third of the uncontended acquire+release path.
//	Since time.Time
type LockInfo = lockmgr.LockInfo

// WaitEdge is one "waiter waits for holder" step of a deadlock cycle.
//
// Fields (lockmgr.WaitEdge):
//
//	Waiter, Holder uint64
//	Key, End       []byte // the contended target; End nil and !Range: point key
//	Range          bool
//	Mode           Mode // the mode the waiter asked for
//	Soft           bool // Holder is an earlier queued waiter, not a holder
//	// HolderMode is the mode Holder holds on the target (for a soft edge:
//	// the mode it is queued for).
//	HolderMode Mode
//	// Upgrade says the waiter already holds a weaker lock overlapping the
//	// target: it asks to convert it (S to X), as a read-then-write does.
//	Upgrade bool
type WaitEdge = lockmgr.WaitEdge

// KV is a key with its value and version.
//
// Fields (txn.KV):
//
//	Key, Value []byte
//	Version    uint64
type KV = txn.KV

// Locks returns every lock holder and waiter right now, like PostgreSQL's
// pg_locks view.
func (db *DB) Locks() []LockInfo {
	if db.x != nil {
		if in, ok := db.x.(engine.Inspector); ok {
			return in.Locks()
		}
		return nil
	}
	return db.e.Locks()
}

// WriteWaitForGraph writes the current wait-for graph as Graphviz DOT.
// Over another engine (OpenEngine) it fails with ErrNotSupported.
func (db *DB) WriteWaitForGraph(w io.Writer) error {
	if db.x != nil {
		return notSupported("WriteWaitForGraph")
	}
	return db.e.LockManager().WriteDOT(w)
}

// LastDeadlock returns the most recent deadlock, like InnoDB's LATEST
// DETECTED DEADLOCK, or nil.
func (db *DB) LastDeadlock() *DeadlockError {
	if db.x != nil {
		if in, ok := db.x.(engine.Inspector); ok {
			return in.LastDeadlock()
		}
		return nil
	}
	return db.e.LastDeadlock()
}

// DeadlockRecord is one deadlock the DB resolved: its number (1, 2, … since
// Open), when it was found, and the report.
//
// Fields (txn.DeadlockRecord):
//
//	Seq  uint64
//	Time time.Time
//	Err  *lockmgr.DeadlockError
type DeadlockRecord = txn.DeadlockRecord

// RecentDeadlocks returns the deadlocks found after the one numbered after
// (0: all that are kept), oldest first — at most the last 32. A gap between
// after and the first Seq returned counts deadlocks no longer kept. A
// watcher that remembers the last Seq it saw lists every deadlock of a storm
// (package txkvhttp does).
func (db *DB) RecentDeadlocks(after uint64) []DeadlockRecord { return db.e.RecentDeadlocks(after) }

// HotKey is a key (or a range, for range-lock waits) with its recent
// contention: validation conflicts, lock waits and deadlocks, each count
// halving every ten seconds.
//
// Fields (txn.HotKey):
//
//	Key       []byte
//	End       []byte // for a range lock wait: the range's end (nil: open, or a point key)
//	Range     bool
//	Conflicts uint64 // validation failures (ConflictError) on it
//	LockWaits uint64 // lock requests that had to wait for it
//	Deadlocks uint64 // deadlock cycles through it
//	// Temperature is the key's conflict temperature now (MOCC's, package
//	// steer: recent validation failures, halving every 500 ms); 0 for a range.
//	Temperature uint32
//	// AdaptiveLocks says an Adaptive transaction now locks the key when it
//	// reads it (Temperature ≥ Options.AdaptiveThreshold): the key has
//	// switched from optimistic to locked. False for a range.
//	AdaptiveLocks bool
type HotKey = txn.HotKey

// HotKeys returns up to n keys with the most recent contention, highest
// first — the keys your transactions are fighting over. It is always on:
// it costs nothing until a transaction conflicts, waits or deadlocks.
func (db *DB) HotKeys(n int) []HotKey {
	if db.x != nil {
		if in, ok := db.x.(engine.Inspector); ok {
			return in.HotKeys(n)
		}
		return nil
	}
	return db.e.HotKeys(n)
}

// Checkpoint moves committed versions into the file's base and truncates the
// log now, instead of waiting for the size thresholds.
// Over another engine (OpenEngine) it fails with ErrNotSupported: that
// engine manages its own storage.
func (db *DB) Checkpoint() error {
	if db.x != nil {
		return notSupported("Checkpoint")
	}
	return db.e.Checkpoint()
}

// wrapFn adapts a user's fn to an engine's transactions.
func wrapFn(fn func(tx *Tx) error) func(engine.Tx) error {
	if fn == nil {
		return nil
	}
	return func(t engine.Tx) error { return fn(&Tx{x: &foreignTx{t}}) }
}

func notSupported(op string) error { return fmt.Errorf("%w: %s", ErrNotSupported, op) }
