package txn

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv/changefeed"
	"github.com/txkv/txkv/internal/crashpoint"
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/steer"
	"github.com/txkv/txkv/wal"
)

// DB is the transaction engine: it owns the log, the versioned store and the
// lock table, and runs the commit protocol over them.
//
// Lock order: Tx.mu > active shard mutex: a Tx unregisters itself with its
// own mutex held; Close collects the active transactions shard by shard and
// rolls them back after releasing each shard.
type DB struct {
	cfg   Options  // validated, defaulted: Open's copy
	log   *wal.Log // nil for an in-memory database
	store *mvcc.Store
	locks *lockmgr.Manager
	stats counters

	temp     *steer.Temperature // per-key conflict temperature (Adaptive)
	window   *steer.Window      // windowed conflict rate (Stats, Adaptive, Advice), recent writes
	steering steering           // Hybrid's and Adaptive's memories (steering.go)
	hot      *hotKeys           // the keys with the most contention events (HotKeys)

	committing committingSet // transactions past "take a commit timestamp"
	statsOff   bool          // BenchmarkStatsOverhead's baseline: skip per-transaction counting

	// nextID is written by every Begin, from every core: alone on its cache
	// line, so that the read-mostly fields around it (cfg, statsOff,
	// closed, …), which every transaction reads, do not move with it.
	_            [64]byte
	nextID       atomic.Uint64
	_            [56]byte
	txPool       sync.Pool // finished View and Update transactions, reused (see recycle)
	lastDeadlock atomic.Pointer[lockmgr.DeadlockError]
	deadlocks    deadlockLog // the last few deadlock reports (RecentDeadlocks)

	// active is the set of running transactions, sharded so that Begin and
	// the end of a transaction on different cores do not contend.
	active [activeShards]activeShard
	// closeMu makes Close run once.
	closeMu sync.Mutex

	// closing is cancelled (cause wal.ErrClosed) when Close starts: lock
	// waits of transactions begun with an uncancellable context end on it.
	closing struct {
		ctx    context.Context
		cancel context.CancelCauseFunc
	}
	// closed is set once Close starts. register checks it under its shard's
	// mutex and Close sets it before sweeping the shards, so a transaction
	// is either refused or seen by the sweep.
	closed atomic.Bool

	ckpt checkpointer

	opened time.Time // Open's time, carrying the monotonic clock: see sinceOpen

	watch *changefeed.Hub // Watch: sequences commits for change streams (watch.go)
}

// Open opens (or creates) the database at path; "" is an in-memory database
// whose contents are lost at Close. It copies opts (nil: the defaults),
// fills zero fields with their defaults and validates them.
func Open(path string, opts *Options) (*DB, error) {
	var cfg Options
	if opts != nil {
		cfg = *opts
	}
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	db := &DB{cfg: cfg, temp: steer.NewTemperature(), hot: newHotKeys(), opened: time.Now()}
	db.closing.ctx, db.closing.cancel = context.WithCancelCause(context.Background())
	if err := db.openStorage(path); err != nil {
		return nil, err
	}
	db.locks = lockmgr.New(&lockmgr.Options{
		Detection:  cfg.DeadlockDetection,
		Interval:   cfg.DeadlockInterval,
		Victim:     cfg.DeadlockVictim,
		OnDeadlock: db.noteDeadlock,
		OnWait: func(key, end []byte, isRange bool) {
			db.hot.note(key, end, isRange, hotWait)
		},
	})
	db.watch = newWatchHub(db)
	db.ckpt.start(db)
	db.window = steer.NewWindow(db.store.ReadTS)
	db.window.Start()
	return db, nil
}

// openStorage opens the log (if any), builds the store and replays the log
// records after the last checkpoint into it.
func (db *DB) openStorage(path string) error {
	if path == "" {
		db.store = mvcc.NewStore(mvcc.EmptyBase{}, 0, nil)
		return nil
	}
	log, err := wal.Open(path, &wal.Options{
		Sync:         db.cfg.Sync,
		Logger:       db.cfg.Logger,
		BeforeCommit: db.cfg.BeforeLogCommit,

		// The durable watermark (mvcc/durable.go) follows the log writer. The
		// store exists before the first record is enqueued.
		OnDurable: func(ts []uint64) { db.store.MarkDurable(ts) },
		OnFailed:  func(err error) { db.store.FailDurable(err) },

		// The log kept behind the checkpoint for Watch (watch.go).
		RetainRecords: max(db.cfg.WatchRetainRecords, 0), RetainBytes: db.cfg.WatchRetainBytes,
	})
	if err != nil {
		return err
	}
	db.log = log
	db.store = mvcc.NewStore(log, log.CheckpointTS(), nil)
	start := time.Now()
	last, err := log.Replay(func(r *wal.Record) error {
		db.store.Replay(r.TS, opsToWrites(r.Ops))
		return nil
	})
	if err != nil {
		_ = log.Close()
		return err
	}
	db.cfg.Logger.Info("txkv: recovered", "path", path, "checkpoint_ts", log.CheckpointTS(),
		"last_ts", last, "took", time.Since(start))
	return nil
}

func opsToWrites(ops []wal.Op) []mvcc.Write {
	ws := make([]mvcc.Write, len(ops))
	for i, op := range ops {
		ws[i] = mvcc.Write{Key: op.Key, Value: op.Value, Delete: op.Delete}
	}
	return ws
}

func writesToOps(ws []mvcc.Write) []wal.Op {
	ops := make([]wal.Op, len(ws))
	for i, w := range ws {
		ops[i] = wal.Op{Key: w.Key, Value: w.Value, Delete: w.Delete}
	}
	return ops
}

func (db *DB) noteDeadlock(e *lockmgr.DeadlockError) {
	db.stats.deadlocks.Add(1)
	db.lastDeadlock.Store(e)
	db.deadlocks.add(e, time.Now())
	for i, ed := range e.Cycle {
		if !slices.ContainsFunc(e.Cycle[:i], func(p lockmgr.WaitEdge) bool { return sameTarget(p, ed) }) {
			db.hot.note(ed.Key, ed.End, ed.Range, hotDeadlock)
		}
	}
}

func sameTarget(a, b lockmgr.WaitEdge) bool {
	return a.Range == b.Range && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.End, b.End)
}

// Options returns the configuration the database runs with: the options
// given to Open, with every default filled in.
func (db *DB) Options() Options { return db.cfg }

// LastDeadlock returns the most recent deadlock report, or nil.
func (db *DB) LastDeadlock() *lockmgr.DeadlockError { return db.lastDeadlock.Load() }

// Locks returns every lock holder and waiter right now (PostgreSQL's pg_locks).
func (db *DB) Locks() []lockmgr.LockInfo { return db.locks.Locks() }

// LockManager exposes the lock table (for introspection such as WriteDOT).
func (db *DB) LockManager() *lockmgr.Manager { return db.locks }

// Close rolls back the transactions still running (their next call returns
// wal.ErrClosed), waits for commits in flight, checkpoints, and closes the log.
// Later calls return wal.ErrClosed. If the log failed (a write or fsync
// failed, say the disk filled), Close still closes everything and returns
// that failure: what was acknowledged is on disk, the rest never will be.
func (db *DB) Close() error { return db.close(true) }

// CloseWithoutCheckpoint closes like Close but skips the final checkpoint,
// leaving the log as a crash would: recovery tests and benchmarks use it.
func (db *DB) CloseWithoutCheckpoint() error { return db.close(false) }

func (db *DB) close(checkpoint bool) error {
	db.closeMu.Lock()
	defer db.closeMu.Unlock()
	if db.closed.Load() {
		return wal.ErrClosed
	}
	db.closed.Store(true)
	active := db.activeTxs()
	db.closing.cancel(wal.ErrClosed)
	for _, tx := range active {
		tx.closeAbort()
	}
	db.waitIdle()
	db.watch.Close()
	db.ckpt.stop()
	db.window.Stop()
	var err error
	if checkpoint {
		err = db.finalCheckpoint()
	}
	crashpoint.Hit(crashpoint.TxnCloseAfterCheckpoint)
	db.locks.Close()
	if db.log != nil {
		if ferr := db.log.Failed(); err == nil {
			err = ferr // also without the final checkpoint, which would have said so
		}
		if cerr := db.log.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

const activeShards = 16

type activeShard struct {
	// mu protects the list (head and the member transactions' prev/next)
	// and idle.
	mu   sync.Mutex
	head *Tx // an intrusive doubly linked list: no allocation, no hashing
	// idle, made by Close when it finds the shard in use, is closed by the
	// unregister that empties it. (The list is the running count: no
	// shared WaitGroup for every transaction to bounce between cores.)
	idle chan struct{}
	_    [40]byte // keep shards on separate cache lines
}

// waitIdle waits until every transaction has unregistered. Close calls it
// after setting closed, so the lists only shrink.
func (db *DB) waitIdle() {
	for i := range db.active {
		sh := &db.active[i]
		sh.mu.Lock()
		var idle chan struct{}
		if sh.head != nil {
			sh.idle = make(chan struct{})
			idle = sh.idle
		}
		sh.mu.Unlock()
		if idle != nil {
			<-idle
		}
	}
}

// register adds tx to the running set, or fails if the DB is closed.
func (db *DB) register(tx *Tx) error {
	sh := &db.active[tx.id%activeShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if db.closed.Load() {
		return wal.ErrClosed
	}
	tx.activeNext = sh.head
	if sh.head != nil {
		sh.head.activePrev = tx
	}
	sh.head = tx
	return nil
}

func (db *DB) unregister(tx *Tx) {
	sh := &db.active[tx.id%activeShards]
	sh.mu.Lock()
	if tx.activePrev != nil {
		tx.activePrev.activeNext = tx.activeNext
	} else {
		sh.head = tx.activeNext
	}
	if tx.activeNext != nil {
		tx.activeNext.activePrev = tx.activePrev
	}
	tx.activePrev, tx.activeNext = nil, nil
	if sh.head == nil && sh.idle != nil {
		close(sh.idle)
		sh.idle = nil
	}
	sh.mu.Unlock()
}

// activeTxs lists the running transactions (Close, after setting closed).
func (db *DB) activeTxs() []*Tx {
	var txs []*Tx
	for i := range db.active {
		sh := &db.active[i]
		sh.mu.Lock()
		for tx := sh.head; tx != nil; tx = tx.activeNext {
			txs = append(txs, tx)
		}
		sh.mu.Unlock()
	}
	return txs
}

// writable reports why the database refuses writes, if it does.
func (db *DB) writable() error {
	if db.log == nil {
		return nil
	}
	return db.log.Failed()
}

// checkKey and checkValue enforce the size limits (ErrInvalidKey, ErrValueTooLarge).
func (db *DB) checkKey(key []byte) error {
	switch {
	case key == nil:
		return fmt.Errorf("%w: key is nil", ErrInvalidKey)
	case len(key) == 0:
		return fmt.Errorf("%w: key is empty", ErrInvalidKey)
	case len(key) > db.cfg.MaxKeySize:
		return fmt.Errorf("%w: key of %d bytes exceeds MaxKeySize %d", ErrInvalidKey, len(key), db.cfg.MaxKeySize)
	}
	return nil
}

func (db *DB) checkValue(value []byte) error {
	if len(value) > db.cfg.MaxValueSize {
		return fmt.Errorf("%w: value of %d bytes exceeds MaxValueSize %d", ErrValueTooLarge, len(value), db.cfg.MaxValueSize)
	}
	return nil
}

// lockTimeout resolves a transaction's lock timeout: a zero option means
// the DB's (the options rule); everything else already speaks lockmgr's
// convention (Forever or any negative: no bound).
func (db *DB) lockTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return db.cfg.LockTimeout // never 0 itself: defaulted at Open
	}
	return d
}

// Get reads the newest committed value of key at the read watermark without
// a transaction object (a one-key read-only transaction).
func (db *DB) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := db.checkKey(key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if db.isClosed() {
		return nil, wal.ErrClosed
	}
	var sn mvcc.Snapshot
	db.store.OpenSnapshot(&sn)
	defer sn.Close()
	v, _, ok, err := sn.Get(key)
	if err != nil {
		return nil, err
	}
	if err := db.settle(sn.Seen()); err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return cloneBytes(v), nil
}

// settle waits until version seen is durable (see Tx.settleLocked): one
// atomic load when it is, inlined into every point read; the wait is kept
// out of line (noinline) so that the check stays within the inlining budget.
func (db *DB) settle(seen uint64) error {
	if seen <= db.store.DurableTS() {
		return nil
	}
	return db.waitDurable(seen)
}

//go:noinline
func (db *DB) waitDurable(seen uint64) error {
	db.stats.durabilityWaits.Add(1)
	return db.store.WaitDurable(context.Background(), seen)
}

// sinceOpen is a monotonic clock in nanoseconds, 8 bytes where a time.Time
// takes 24: transactions record their start with it.
func (db *DB) sinceOpen() int64 { return int64(time.Since(db.opened)) }

func (db *DB) isClosed() bool { return db.closed.Load() }

func cloneBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return append(make([]byte, 0, len(b)), b...)
}
