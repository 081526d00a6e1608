package txn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// Tx is one transaction. It is not safe for concurrent use by several
// goroutines (like sql.Tx and bolt.Tx), except that its context being
// cancelled, or the DB closing, may roll it back asynchronously.
type Tx struct {
	db        *DB
	id        uint64
	requested Strategy // the strategy asked for: its row of the strategy table (strategy.go)
	run       runMode  // how this attempt runs (a Hybrid retry runs runLocking)
	iso       Isolation
	timeout   time.Duration
	start     int64 // nanoseconds since the DB opened (monotonic), if timed(id): MeanTxTime
	readOnly  bool
	managed   bool // inside Update/View: Commit and Rollback are refused

	ctx       context.Context
	cancelCtx context.CancelCauseFunc
	stopAfter func() bool

	// activePrev and activeNext link the transaction into its shard of the
	// DB's running set (guarded by that shard's mutex, not by mu).
	activePrev, activeNext *Tx

	// mu serializes the user's calls with an asynchronous rollback (context
	// cancelled, DB closed). It protects every field below. (The fields are
	// ordered to pack: a View allocates one Tx and nothing else, so its
	// size is what a read-only transaction costs the garbage collector.)
	mu       sync.Mutex
	abortErr error         // why the transaction was rolled back asynchronously
	snap     mvcc.Snapshot // the reader, in place: opening it does not allocate
	writes   mvcc.WriteSet // the zero value is empty and allocates nothing
	reads    [][]byte      // keys read from the snapshot, validated at commit (Serializable OCC)
	ranges   []keyRange    // ranges scanned from the snapshot, validated at commit
	plan     *retryPlan    // how a failed Update attempt told this one to run (nil: as asked)
	// tried holds the keys this attempt locked with NoWait or SkipLocked.
	// A Hybrid retry does not prelock them: fn asks for them again with its
	// own policy, and a blocking prelock would make a SKIP LOCKED worker
	// wait for (and deadlock with) whoever claimed the row since.
	tried   map[string]struct{}
	nReads  int32 // key reads and writes, summed into the DB's counters at the end
	nWrites int32
	// maxSeen is the newest version any read returned or was decided by (a
	// tombstone). Reads of the latest version (under locks) can see a commit
	// whose timestamp is above the read watermark — installed, not yet
	// visible to snapshots; and any read can see one not yet durable.
	maxSeen uint64
	state   txState     // where it is in its life (state.go)
	locked  bool        // the transaction may hold locks
	reason  abortReason // why the transaction ends, if it does not commit
	labeled bool        // the lock table holds a label or an age for this transaction
	// latestReads: some reads were of the latest version under a lock
	// while others came from the snapshot (see commitReadOnlyLocked).
	latestReads bool
	recyclable  bool // finished, and referenced by nobody but its owner (View may reuse it)
}

type keyRange struct{ start, end []byte }

// ID returns the transaction's ID: unique in this process, increasing with
// start time (so the largest ID in a deadlock cycle is the youngest).
func (tx *Tx) ID() uint64 { return tx.id }

// Context returns the context the transaction is bound to.
func (tx *Tx) Context() context.Context { return tx.ctx }

// Strategy returns the strategy this attempt runs with: Hybrid for Hybrid's
// optimistic attempts and Pessimistic for its pessimistic ones; for Adaptive,
// the arm it runs (Adaptive for MOCC, else Optimistic or Pessimistic).
func (tx *Tx) Strategy() Strategy {
	if s := tx.policy().optimisticAs; tx.run == runOptimistic && s != StrategyDefault {
		return s
	}
	return tx.run.strategy()
}

// Isolation returns the transaction's isolation level.
func (tx *Tx) Isolation() Isolation { return tx.iso }

// ReadTS returns the snapshot timestamp reads see (math.MaxUint64 when reads
// see the latest committed version, as strict 2PL reads do).
func (tx *Tx) ReadTS() uint64 { return tx.snap.TS() }

// Begin starts a transaction bound to ctx.
func (db *DB) Begin(ctx context.Context, opts *TxOptions) (*Tx, error) {
	return db.begin(ctx, opts, false, nil)
}

func (db *DB) begin(ctx context.Context, opts *TxOptions, managed bool, plan *retryPlan) (*Tx, error) {
	if ctx == nil {
		return nil, errors.New("txkv: nil context")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	tx, err := db.newTx(opts, managed)
	if err != nil {
		return nil, err
	}
	var pre []prelock
	if plan != nil {
		pre, tx.plan = plan.pre, plan
		if plan.pessimistic {
			tx.run = runLocking // a Hybrid retry
		}
	}
	label := ""
	if opts != nil {
		label = opts.Label
	}
	if err := tx.open(ctx, label, plan); err != nil {
		return nil, err
	}
	if len(pre) > 0 {
		if err := tx.lockPrelocks(pre); err != nil {
			return nil, err
		}
		tx.refreshSnapshot(pre)
	}
	return tx, nil
}

// requestedStrategy is the strategy opts ask for, or the DB's default.
func (db *DB) requestedStrategy(opts *TxOptions) Strategy {
	if opts != nil && opts.Strategy != StrategyDefault {
		return opts.Strategy
	}
	return db.cfg.Strategy
}

func (db *DB) newTx(opts *TxOptions, managed bool) (*Tx, error) {
	var o TxOptions
	if opts != nil {
		o = *opts
	}
	tx := db.allocTx(managed)
	*tx = Tx{db: db, managed: managed, readOnly: o.ReadOnly}
	tx.requested = db.requestedStrategy(opts)
	tx.iso = o.Isolation
	if tx.iso == IsolationDefault {
		tx.iso = db.cfg.Isolation
	}
	if err := validateTxOptions(&o, tx); err != nil {
		return nil, err
	}
	tx.run = tx.policy().start(db)
	tx.timeout = db.lockTimeout(o.LockTimeout)
	tx.id = db.nextID.Add(1)
	if timed(tx.id) {
		tx.start = db.sinceOpen()
	}
	return tx, nil
}

// open binds the transaction to ctx, opens its reader and registers it
// with the DB — under tx.mu, so an AfterFunc fired by an early cancel waits
// until the transaction is whole, and Close only ever sees whole ones.
func (tx *Tx) open(ctx context.Context, label string, plan *retryPlan) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	tx.bind(ctx)
	tx.openReader()
	if err := tx.db.register(tx); err != nil {
		tx.setStateLocked(stateReleased) // never registered: nothing to end
		tx.snap.Close()
		tx.stopAfter()
		tx.cancelCtx(nil)
		return err
	}
	if label != "" {
		tx.labeled = true
		tx.db.locks.SetLabel(tx.id, label)
	}
	if plan != nil && plan.age != 0 {
		tx.labeled = true // the lock table keeps the age until ReleaseAll
		tx.db.locks.SetAge(tx.id, plan.age)
	}
	return nil
}

// bind ties the transaction to ctx: cancelling ctx (or closing the DB, which
// cancels with wal.ErrClosed as the cause) rolls the transaction back.
//
// A parent that can never be cancelled (context.Background) costs nothing:
// the transaction waits on the DB's own closing context, and Close rolls it
// back directly. Only cancellable parents pay for a child context and an
// AfterFunc.
func (tx *Tx) bind(parent context.Context) {
	if parent.Done() == nil {
		tx.ctx, tx.cancelCtx, tx.stopAfter = tx.db.closing.ctx, noCancel, noStop
	} else {
		tx.ctx, tx.cancelCtx = context.WithCancelCause(parent)
		tx.stopAfter = context.AfterFunc(tx.ctx, tx.abortAsync)
	}
}

func noCancel(error) {}
func noStop() bool   { return true }

// openReader chooses what reads see: strict 2PL reads the latest committed
// version under its locks; everything else reads a snapshot at the watermark.
func (tx *Tx) openReader() {
	if tx.run == runLocking && tx.iso == Serializable && !tx.readOnly {
		tx.db.store.OpenLatest(&tx.snap)
	} else {
		tx.db.store.OpenSnapshot(&tx.snap)
	}
}

// closeAbort is how Close ends a running transaction: cancel its own
// context (its AfterFunc rolls it back), or, for one bound to the DB's
// closing context, roll it back here.
func (tx *Tx) closeAbort() {
	if tx.ctx == tx.db.closing.ctx {
		tx.abortAsync()
		return
	}
	tx.cancelCtx(wal.ErrClosed)
}

// abortAsync runs when the context is done: it rolls back unless the
// transaction already finished.
func (tx *Tx) abortAsync() {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.finished() {
		return
	}
	tx.abortErr = tx.ctxErr()
	tx.reason = reasonCancelled
	tx.finishLocked(false)
}

// ctxErr is the error the transaction reports once its context is done:
// wal.ErrClosed if the DB closed it, otherwise the context's own error.
func (tx *Tx) ctxErr() error {
	if cause := context.Cause(tx.ctx); cause != nil && !errors.Is(cause, context.Canceled) &&
		!errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	return tx.ctx.Err()
}

// usableLocked returns the error every operation returns on a finished or
// cancelled transaction (and rolls a cancelled one back).
func (tx *Tx) usableLocked() error {
	if tx.finished() {
		if tx.abortErr != nil {
			return tx.abortErr
		}
		return ErrTxDone
	}
	if tx.ctx.Err() != nil {
		tx.abortErr = tx.ctxErr()
		tx.reason = reasonCancelled
		tx.finishLocked(false)
		return tx.abortErr
	}
	return nil
}

// failLocked rolls the transaction back after an error that ends it
// (deadlock victim, cancelled context, conflict, failed log write). A
// transaction ended by a retryable error stays ended by it: every later
// call returns that error (errors.Is ErrDeadlock or ErrConflict), so an
// Update whose callback dropped the first one still retries.
func (tx *Tx) failLocked(err error) error {
	if tx.abortErr == nil && IsRetryable(err) {
		tx.abortErr = err
	}
	if !tx.finished() && tx.managed && IsRetryable(err) && tx.locked {
		tx.rememberHeldLocked()
	}
	if !tx.finished() {
		tx.reason = classify(err)
		tx.finishLocked(false)
	}
	return err
}

// finishLocked releases everything the transaction holds and ends it.
// committed says whether it ends by commit (for the statistics).
func (tx *Tx) finishLocked(committed bool) {
	tx.releaseLocked()
	tx.endLocked(committed)
}

// releaseLocked is the first half of the end: the transaction is done, its
// reader closed, its locks released and it leaves the committing set. A
// committer calls it right after installing (early lock release) and ends
// only once its record is durable.
func (tx *Tx) releaseLocked() {
	committing := tx.state == stateCommitting
	tx.setStateLocked(stateReleased)
	tx.maxSeen = max(tx.maxSeen, tx.snap.Seen())
	tx.snap.Close()
	if tx.locked || tx.labeled {
		// ReleaseAll also forgets the label SetLabel recorded at Begin,
		// which a transaction that never locked would otherwise leak.
		tx.db.locks.ReleaseAll(tx.id)
	}
	if committing {
		tx.db.committing.remove(tx.id) // after install and release
	}
}

// endLocked is the second half: the transaction unbinds from its context,
// is counted and leaves the running set (Close waits for that).
func (tx *Tx) endLocked(committed bool) {
	tx.setStateLocked(stateEnded)
	stopped := tx.stopAfter()
	tx.cancelCtx(nil)
	// Real-time order (linearizability of CompareAndSwap, strict
	// serializability): a transaction that saw a version above the read
	// watermark does not end until that version is visible, so nothing that
	// begins after it can read an older state. The wait is short: the
	// version is installed, its commit is only waiting for earlier ones.
	if tx.maxSeen > tx.db.store.ReadTS() {
		_ = tx.db.store.WaitVisible(context.Background(), tx.maxSeen)
	}
	tx.db.noteEnd(tx, committed)
	tx.db.unregister(tx)
	// Recyclable once nothing else can reach it: its AfterFunc will not
	// run, and Close (which lists running transactions only after setting
	// closed) did not list it. See View.
	tx.recyclable = stopped && !tx.db.closed.Load()
}

// settleLocked waits until every version the transaction saw is durable —
// what a reader does before it acknowledges anything (a read-only commit,
// an Update returning its callback's error). A version at or below the
// durable watermark costs one atomic load. It fails with the log's error
// (ErrLogFailed) if the log failed before that version became durable: the
// version was installed but will not survive, so nothing may report it.
func (tx *Tx) settleLocked() error {
	return tx.db.settle(max(tx.maxSeen, tx.snap.Seen()))
}

// Rollback ends the transaction without committing. It is safe after Commit
// and returns ErrTxDone then.
func (tx *Tx) Rollback() error {
	if tx.managed {
		return ErrTxManaged
	}
	return tx.rollback()
}

func (tx *Tx) rollback() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if tx.finished() {
		return ErrTxDone
	}
	tx.finishLocked(false)
	return nil
}

// rollbackSettled rolls back a managed transaction whose callback failed
// with err, and returns err once what the transaction read is durable (the
// error may rest on it); if the log failed first, the log's error joins it.
func (tx *Tx) rollbackSettled(err error) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if !tx.finished() {
		tx.releaseLocked()
		serr := tx.settleLocked()
		tx.endLocked(false)
		if serr != nil {
			return errors.Join(err, serr)
		}
	}
	return err
}

// locking reports whether plain reads and writes take locks (strict 2PL).
func (tx *Tx) locking() bool { return tx.run == runLocking }

// lockLocked acquires a lock for the transaction, waiting per policy.
// A deadlock or a cancelled context ends the transaction (its locks must go);
// NOWAIT and a lock timeout fail only the request, as InnoDB's default
// innodb_rollback_on_timeout=OFF does, and the transaction stays usable.
func (tx *Tx) lockLocked(t lockmgr.Target, mode lockmgr.Mode, p lockmgr.WaitPolicy, timeout time.Duration) error {
	tx.locked = true
	err := tx.db.locks.Acquire(tx.ctx, tx.id, t, mode, p, timeout)
	if err == nil {
		return nil
	}
	tx.db.stats.noteLockError(err)
	tx.reason = classify(err) // a rollback that follows is blamed on this refusal
	switch {
	case tx.ctx.Err() != nil:
		tx.abortErr = tx.ctxErr() // later calls report the cancellation too
		return tx.failLocked(tx.abortErr)
	case errors.Is(err, lockmgr.ErrDeadlock):
		return tx.failLocked(err)
	}
	return err
}

func validateTxOptions(o *TxOptions, tx *Tx) error {
	switch {
	case !tx.requested.valid():
		return fmt.Errorf("%w: unknown strategy %v", ErrInvalidOption, o.Strategy)
	case tx.iso < Serializable || tx.iso > Snapshot:
		return fmt.Errorf("%w: unknown isolation %v", ErrInvalidOption, o.Isolation)
	case o.Retry != nil:
		return o.Retry.validate()
	}
	return nil
}
