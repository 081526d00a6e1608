package txn

import (
	"bytes"
	"context"
	"errors"
	"sync"

	"github.com/txkv/txkv/internal/crashpoint"
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// Commit makes the transaction's writes visible and durable, following the
// one protocol every strategy shares (see the package doc, "The commit
// protocol" and "Visible before durable"):
//
//  1. lock the write set exclusively, in key order;
//  2. take the commit timestamp (the serialization point);
//  3. validate optimistic reads and scanned ranges;
//  4. enqueue the commit record in the log (group commit batches it);
//  5. install the versions at ts, mark ts done, release every lock — the
//     writes are visible now, not yet durable;
//  6. wait until the record's batch is durable, then return.
//
// Releasing the locks before the fsync (early lock release) is what lets
// conflicting transactions proceed while this one's batch is written. It is
// safe because nothing that depends on this commit is acknowledged first: a
// read-write transaction that saw these writes enqueues its own record later
// (same batch or a later one), and a reader that saw them waits for the
// durable watermark before it returns (settleLocked). On any error the
// transaction is rolled back. Commit returns after its writes are durable
// and visible to every transaction that begins afterwards.
func (tx *Tx) Commit() error {
	if tx.managed {
		return ErrTxManaged
	}
	return tx.commit()
}

func (tx *Tx) commit() error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usableLocked(); err != nil {
		return err
	}
	if tx.writes.Len() == 0 {
		return tx.commitReadOnlyLocked()
	}
	if err := tx.db.writable(); err != nil {
		return tx.failLocked(err)
	}
	writes := tx.writes.Writes()
	if err := tx.lockWriteSetLocked(writes); err != nil {
		return tx.failLocked(err)
	}
	tx.db.committing.add(tx.id) // before Next: see committingSet
	tx.setStateLocked(stateCommitting)
	ts := tx.db.store.Next()
	if err := tx.validateLocked(writes); err != nil {
		tx.db.store.DoneDurable(ts) // aborted: nothing to persist
		tx.noteConflictLocked(err)
		tx.noteLostTo(err, ts)
		return tx.failLocked(err)
	}
	crashpoint.Hit(crashpoint.TxnBeforeAppend)
	pending, err := tx.db.enqueueLog(ts, tx.id, writes)
	if err != nil {
		tx.db.store.DoneDurable(ts)
		return tx.failLocked(err)
	}
	crashpoint.Hit(crashpoint.TxnAfterAppend)
	tx.installLocked(ts, writes)
	return tx.awaitDurableLocked(ts, pending)
}

// installLocked is step 5: the versions go into the memtable at ts, the
// change-stream hub gets the record (before Done: see "Ordering" in
// changefeed), ts is marked done and every lock is released — waiters are
// granted now, while the record is still being written.
func (tx *Tx) installLocked(ts uint64, writes []mvcc.Write) {
	tx.db.store.Install(ts, writes)
	crashpoint.Hit(crashpoint.TxnMidInstall)
	tx.db.watch.Publish(ts, writes)
	if tx.db.log == nil {
		tx.db.store.DoneDurable(ts) // in memory, installed is as durable as it gets
	} else {
		tx.db.store.Done(ts)
	}
	tx.releaseLocked()
}

// awaitDurableLocked is step 6. If the batch fails, the versions stay
// installed but are never reported: the log is poisoned, every reader that
// saw them gets ErrLogFailed from its own wait, and the DB refuses writes.
func (tx *Tx) awaitDurableLocked(ts uint64, pending wal.Pending) error {
	crashpoint.Hit(crashpoint.TxnBeforeDurable)
	if err := pending.Wait(); err != nil {
		tx.reason = classify(err)
		tx.endLocked(false)
		return err
	}
	tx.endLocked(true)
	// Read-your-writes: wait until every earlier commit is done too, so a
	// transaction begun after Commit returns sees this one. The commit is
	// durable already; cancellation must not turn it into a failure.
	_ = tx.db.store.WaitVisible(context.Background(), ts)
	tx.db.ckpt.maybeKick()
	return nil
}

// commitReadOnlyLocked ends a transaction that wrote nothing. If all its
// reads came from one snapshot (or all were made under locks it still
// holds), it is serializable as it stands. But a Serializable transaction
// that mixed both — snapshot reads and locked reads of the latest version
// (an Adaptive hot key, GetForShare, GetForUpdate) — saw two points in
// time: it must validate its snapshot reads, which then prove them still
// current, so every read holds at this moment. No timestamp is needed: a
// committer that has not taken one yet serializes after this moment, and
// one that has is installed or still in the committing set.
//
// Before it reports success it waits until what it read is durable.
func (tx *Tx) commitReadOnlyLocked() error {
	if tx.latestReads && tx.iso == Serializable && !tx.locking() {
		if err := tx.validateReadsLocked(); err != nil {
			tx.noteConflictLocked(err)
			return tx.failLocked(err)
		}
		if err := tx.validateRangesLocked(); err != nil {
			tx.noteConflictLocked(err)
			return tx.failLocked(err)
		}
	}
	tx.releaseLocked()
	if err := tx.settleLocked(); err != nil {
		tx.reason = classify(err)
		tx.endLocked(false)
		return err
	}
	tx.endLocked(true)
	return nil
}

// lockWriteSetLocked is step 1: exclusive locks on the written keys, in key
// order (writes are sorted), so two committers never deadlock on each other's
// write sets. Strict 2PL holds them already and the calls return at once.
func (tx *Tx) lockWriteSetLocked(writes []mvcc.Write) error {
	for i := range writes {
		err := tx.lockLocked(lockmgr.Point(writes[i].Key), lockmgr.Exclusive, lockmgr.Block, tx.timeout)
		if err != nil {
			return err
		}
	}
	return nil
}

// validateLocked is step 3. Optimistic Serializable: every read is still the
// newest committed version and no other transaction holds it exclusively
// (that one may have a smaller commit timestamp and not be installed yet —
// Silo's check); every scanned range gained no version and holds no foreign
// exclusive lock. Snapshot isolation checks only the write set
// (first-committer-wins). Strict 2PL needs nothing: its locks did the work.
func (tx *Tx) validateLocked(writes []mvcc.Write) error {
	if tx.locking() && tx.iso == Serializable {
		return nil
	}
	if tx.iso == Snapshot {
		return tx.validateWritesLocked(writes)
	}
	if err := tx.validateReadsLocked(); err != nil {
		return err
	}
	return tx.validateRangesLocked()
}

func (tx *Tx) validateWritesLocked(writes []mvcc.Write) error {
	snap := tx.snap.TS()
	for i := range writes {
		if tx.db.store.HasNewer(writes[i].Key, snap) {
			return tx.conflict(writes[i].Key, ReasonWriteChanged)
		}
	}
	return nil
}

// Only holders that are committing count (committingSet): one that has not
// begun to will take a later timestamp and serialize after us.
//
// The lock is checked before the version, never after: a writer that held
// the key at the lock check is caught by it; one that did not either had not
// locked yet (so its timestamp will be larger than ours) or had released —
// and it installs before it releases, so the version check that follows
// sees its write. In the other order, a writer could install and release
// between the two checks and slip through both.
func (tx *Tx) validateReadsLocked() error {
	snap := tx.snap.TS()
	for _, k := range tx.reads {
		if tx.db.locks.HeldByOtherFunc(tx.id, k, lockmgr.Shared, tx.db.committing.has) {
			return tx.conflict(k, ReasonReadLocked)
		}
		if tx.db.store.HasNewer(k, snap) {
			return tx.conflict(k, ReasonReadChanged)
		}
	}
	return nil
}

func (tx *Tx) validateRangesLocked() error {
	snap := tx.snap.TS()
	for _, r := range tx.ranges {
		if tx.db.locks.RangeHeldByOtherFunc(tx.id, r.start, r.end, lockmgr.Shared, tx.db.committing.has) {
			return tx.rangeConflict(r, ReasonRangeLocked)
		}
		if tx.db.store.HasNewerInRange(r.start, r.end, snap) {
			return tx.rangeConflict(r, ReasonRangeChanged)
		}
	}
	return nil
}

func (tx *Tx) conflict(key []byte, reason string) error {
	return &ConflictError{TxID: tx.id, Key: bytes.Clone(key), Reason: reason}
}

func (tx *Tx) rangeConflict(r keyRange, reason string) error {
	return &ConflictError{TxID: tx.id, Key: r.start, End: r.end, Range: true, Reason: reason}
}

// enqueueLog is step 4: the record joins the group-committed log's queue;
// the returned Pending learns when it is durable. In-memory databases have no
// log: the zero Pending is "durable at once".
func (db *DB) enqueueLog(ts, id uint64, writes []mvcc.Write) (wal.Pending, error) {
	if db.log == nil {
		return wal.Pending{}, nil
	}
	return db.log.Enqueue(&wal.Record{TS: ts, TxnID: id, Ops: writesToOps(writes)})
}

// noteLostTo records in a validation failure the commit timestamp it lost
// to, which the retry's snapshot must include (see Update: no doomed
// retries): a changed key's newest version; for a key locked by a committer
// with a smaller timestamp, or a range, at least our own (aborted) ts.
func (tx *Tx) noteLostTo(err error, ts uint64) {
	var ce *ConflictError
	if !errors.As(err, &ce) {
		return
	}
	ce.lostTo = ts
	if !ce.Range && len(ce.Key) > 0 {
		ce.lostTo = max(ts, tx.db.store.NewestVersion(ce.Key))
	}
}

// noteConflictLocked counts a validation failure and heats the key it
// happened on (for a range: its start), so Adaptive transactions lock it
// next time — exclusively if this transaction had written it too.
func (tx *Tx) noteConflictLocked(err error) {
	tx.db.stats.conflicts.Add(1)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		return
	}
	tx.db.hot.note(ce.Key, ce.End, ce.Range, hotConflict)
	if len(ce.Key) > 0 {
		_, _, written := tx.writes.Get(ce.Key)
		tx.db.temp.Heat(ce.Key, written)
	}
}

// committingSet holds the transactions that have begun to take their commit
// timestamp and not yet released their locks. Validation asks it about the
// holders of locks on keys it read: a holder outside the set has not called
// oracle.Next yet, so its timestamp will follow the validator's and its
// writes serialize after it — its lock is no conflict. (Silo's "not locked
// by another transaction" check assumes locks exist only during commit;
// strict-2PL holders keep theirs for the whole transaction.)
//
// Why this is safe: a committer adds itself before Next() and the oracle's
// mutex orders its Next() before any later one, so a validator whose Next()
// came after sees the membership; removal happens after install.
type committingSet struct {
	shards [committingShards]struct {
		// mu protects m.
		mu sync.Mutex
		m  map[uint64]struct{}
		_  [40]byte // keep shards on separate cache lines
	}
}

const committingShards = 16

func (c *committingSet) shard(id uint64) *struct {
	mu sync.Mutex
	m  map[uint64]struct{}
	_  [40]byte
} {
	return &c.shards[id%committingShards]
}

func (c *committingSet) add(id uint64) {
	s := c.shard(id)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uint64]struct{})
	}
	s.m[id] = struct{}{}
	s.mu.Unlock()
}

func (c *committingSet) remove(id uint64) {
	s := c.shard(id)
	s.mu.Lock()
	delete(s.m, id)
	s.mu.Unlock()
}

// has reports whether id is committing. It is called by the lock manager
// with one of its shard mutexes held (lock order: lockmgr shard > this).
func (c *committingSet) has(id uint64) bool {
	s := c.shard(id)
	s.mu.Lock()
	_, ok := s.m[id]
	s.mu.Unlock()
	return ok
}
