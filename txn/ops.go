package txn

import (
	"bytes"
	"slices"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
)

var slicesSortFunc = slices.SortFunc[[]prelock, prelock]

// Get returns the value of key as the transaction sees it: its own write if
// it wrote key, else the committed value (a snapshot for optimistic and
// snapshot reads; the latest under a shared lock for strict 2PL).
// The returned slice is the caller's.
func (tx *Tx) Get(key []byte) ([]byte, error) {
	v, _, err := tx.GetVersioned(key)
	return v, err
}

// GetVersioned is Get that also returns the key's committed version (the
// commit timestamp of its last writer; 0 if absent). A key this transaction
// wrote returns its own value and the version of the committed value under it.
func (tx *Tx) GetVersioned(key []byte) (value []byte, version uint64, err error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.checkReadLocked(key); err != nil {
		return nil, 0, err
	}
	v, ver, ok, err := tx.readCommittedLocked(key)
	if err != nil {
		return nil, 0, err
	}
	if own, deleted, mine := tx.writes.Get(key); mine {
		if deleted {
			return nil, ver, ErrNotFound
		}
		return cloneBytes(own), ver, nil
	}
	if !ok {
		return nil, ver, ErrNotFound
	}
	return cloneBytes(v), ver, nil
}

func (tx *Tx) checkReadLocked(key []byte) error {
	if err := tx.usableLocked(); err != nil {
		return err
	}
	return tx.db.checkKey(key)
}

// readCommittedLocked reads the committed version of key the strategy
// prescribes: under strict 2PL it first takes a shared lock and reads the
// latest; otherwise it reads the snapshot and records the read.
func (tx *Tx) readCommittedLocked(key []byte) (value []byte, version uint64, ok bool, err error) {
	tx.nReads++
	switch {
	case tx.readOnly:
	case tx.locking() && tx.iso == Serializable:
		if err := tx.lockLocked(lockmgr.Point(key), tx.readMode(key), lockmgr.Block, tx.timeout); err != nil {
			return nil, 0, false, err
		}
	case tx.hotLocked(key):
		// Adaptive: a key that keeps failing validation is locked now
		// (MOCC), exclusively if the failed attempt wrote it, so the
		// retry does not deadlock upgrading S to X.
		if err := tx.lockLocked(lockmgr.Point(key), tx.hotMode(key), lockmgr.Block, tx.timeout); err != nil {
			return nil, 0, false, err
		}
		return tx.readLockedKeyLocked(key)
	default:
		tx.recordRead(key)
	}
	return tx.saw(tx.snap.Get(key))
}

// readMode is the lock a pessimistic read takes: shared (strict 2PL), except
// that on a file Hybrid and Adaptive, when they run a transaction
// pessimistically, read a key written lately exclusively — it will probably
// be written again, and upgrading S to X is how two such readers deadlock
// (recentWrites). A key the retry plan locked already keeps the plan's mode:
// the plan knows from the failed attempt whether the key is written.
//
// Why only on a file: there transactions start in waves (a batch's
// committers are all released when its fsync ends), read the same hot keys
// together and deadlock upgrading in storms (Adaptive on the hot counter, 64
// writers: 0.5 deadlocks per commit with shared reads, none with this rule).
// In memory a deadlock's retry costs microseconds, less than the lock
// hand-off an exclusive read forces on every reader (the contention sweep,
// Hybrid at hot=1: ~335k commits/s with shared reads, ~190k with exclusive).
func (tx *Tx) readMode(key []byte) lockmgr.Mode {
	if !tx.policy().exclusiveRecentReads || tx.prelocked(key) || tx.db.log == nil {
		return lockmgr.Shared
	}
	if tx.db.window.RecentlyWritten(tx.db.store.NewestVersion(key)) {
		return lockmgr.Exclusive
	}
	return lockmgr.Shared
}

// saw passes a read's results through, remembering the newest version the
// transaction has seen (see DB.finishLocked: real-time order).
func (tx *Tx) saw(value []byte, version uint64, ok bool, err error) ([]byte, uint64, bool, error) {
	tx.maxSeen = max(tx.maxSeen, version)
	return value, version, ok, err
}

// hotLocked reports whether an Adaptive transaction should lock key now:
// its conflict temperature has reached the threshold, or it is a hot key the
// failed attempt wrote (its retrospective lock list holds it already, so
// the read must be of the latest version under that lock).
func (tx *Tx) hotLocked(key []byte) bool {
	if tx.run != runHotLocking {
		return false
	}
	hot := tx.db.isHot(key) || slices.ContainsFunc(tx.hotX(), func(k []byte) bool { return bytes.Equal(k, key) })
	if hot {
		tx.db.steering.adaptive.NoteHotLock() // what locking costs, for the steering
	}
	return hot
}

// isHot reports whether key's conflict temperature has reached the
// Adaptive threshold.
func (db *DB) isHot(key []byte) bool {
	return int64(db.temp.Of(key)) >= int64(db.cfg.AdaptiveThreshold)
}

func (tx *Tx) hotMode(key []byte) lockmgr.Mode {
	for _, k := range tx.hotX() {
		if bytes.Equal(k, key) {
			return lockmgr.Exclusive
		}
	}
	if tx.db.temp.Exclusive(key) {
		return lockmgr.Exclusive
	}
	return lockmgr.Shared
}

// recordRead remembers a snapshot read for commit-time validation (and for a
// Hybrid retry to lock). A key read after this transaction wrote it needs
// no validation, but recording it is harmless.
func (tx *Tx) recordRead(key []byte) {
	if tx.iso == Snapshot && !tx.policy().recordsForRetry {
		return // never validated, and no retry plan will lock it
	}
	if tx.reads == nil {
		tx.reads = make([][]byte, 0, 2) // a transfer's two reads: one allocation, not two
	}
	tx.reads = append(tx.reads, bytes.Clone(key))
}

// Put writes key=value, visible to this transaction at once and to others
// after Commit. Strict 2PL takes the exclusive lock now.
func (tx *Tx) Put(key, value []byte) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.checkWriteLocked(key, "Put"); err != nil {
		return err
	}
	if err := tx.db.checkValue(value); err != nil {
		return err
	}
	if err := tx.lockForWriteLocked(key); err != nil {
		return err
	}
	tx.writes.Put(key, value) // the write set copies
	return nil
}

// Delete removes key (deleting an absent key is not an error).
func (tx *Tx) Delete(key []byte) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.checkWriteLocked(key, "Delete"); err != nil {
		return err
	}
	if err := tx.lockForWriteLocked(key); err != nil {
		return err
	}
	tx.writes.Delete(key)
	return nil
}

// PutIfVersion writes key=value only if the key's committed version, as this
// transaction sees it, is version (0: the key must be absent). Otherwise it
// returns ErrVersionMismatch and the transaction stays usable: the caller
// reloads and decides (the guide's version check across a user's think time).
func (tx *Tx) PutIfVersion(key, value []byte, version uint64) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.checkWriteLocked(key, "PutIfVersion"); err != nil {
		return err
	}
	if err := tx.db.checkValue(value); err != nil {
		return err
	}
	if err := tx.lockForWriteLocked(key); err != nil {
		return err
	}
	_, cur, _, err := tx.readCommittedLocked(key)
	if err != nil {
		return err
	}
	if cur != version {
		tx.db.stats.versionMismatches.Add(1)
		return &VersionMismatchError{Key: bytes.Clone(key), Expected: version, Actual: cur}
	}
	tx.writes.Put(key, value) // the write set copies
	return nil
}

func (tx *Tx) checkWriteLocked(key []byte, op string) error {
	if err := tx.usableLocked(); err != nil {
		return err
	}
	if tx.readOnly {
		return readOnlyWrite(op)
	}
	if err := tx.db.writable(); err != nil {
		return err
	}
	return tx.db.checkKey(key)
}

// lockForWriteLocked takes the exclusive lock a pessimistic write needs at
// call time, and applies first-updater-wins under Snapshot isolation.
func (tx *Tx) lockForWriteLocked(key []byte) error {
	tx.nWrites++
	if !tx.locking() && !tx.hotLocked(key) {
		return nil
	}
	if err := tx.lockLocked(lockmgr.Point(key), lockmgr.Exclusive, lockmgr.Block, tx.timeout); err != nil {
		return err
	}
	return tx.checkUpdateConflictLocked(key)
}

// checkUpdateConflictLocked is PostgreSQL's REPEATABLE READ rule for a row
// locked or written by a snapshot transaction: if a newer version was
// committed after the snapshot, the transaction cannot proceed.
func (tx *Tx) checkUpdateConflictLocked(key []byte) error {
	if tx.iso != Snapshot || !tx.db.store.HasNewer(key, tx.snap.TS()) {
		return nil
	}
	tx.db.stats.conflicts.Add(1)
	tx.db.temp.Heat(key, true)
	tx.db.hot.note(key, nil, false, hotConflict)
	return tx.failLocked(&ConflictError{TxID: tx.id, Key: bytes.Clone(key), Reason: ReasonUpdateConflict})
}

// Scan calls fn for each key in [start, end) (nil: unbounded; start at or
// after end: empty, as for every range operation) in key order,
// merging the transaction's own writes. fn's slices are valid only during
// the call and must not be modified. An error from fn stops the scan and is
// returned. fn may use the transaction (Get, Put, …): the transaction's
// mutex is not held while fn runs. Strict 2PL locks the range shared first
// (no phantoms); optimistic Serializable records the range for validation.
func (tx *Tx) Scan(start, end []byte, fn func(key, value []byte) error) error {
	it, err := tx.startScan(start, end)
	if err != nil {
		return err
	}
	defer it.Close()
	var last []byte
	for {
		k, v, ok, err := tx.scanNext(it)
		if err != nil || !ok {
			tx.endScan(start, end, nil, false)
			return err
		}
		if err := fn(k, v); err != nil {
			last = bytes.Clone(k)
			tx.endScan(start, end, last, true)
			return err
		}
	}
}

func (tx *Tx) startScan(start, end []byte) (*mvcc.Iterator, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usableLocked(); err != nil {
		return nil, err
	}
	if err := tx.lockScanLocked(start, end); err != nil {
		return nil, err
	}
	return tx.snap.Iter(start, end, &tx.writes), nil
}

// scanNext advances the iterator under the mutex; a transaction rolled back
// meanwhile (context cancelled, DB closed) ends the scan with its error.
func (tx *Tx) scanNext(it *mvcc.Iterator) (key, value []byte, ok bool, err error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usableLocked(); err != nil {
		return nil, nil, false, err
	}
	if !it.Next() {
		return nil, nil, false, it.Err()
	}
	tx.nReads++
	tx.maxSeen = max(tx.maxSeen, it.Version())
	return it.Key(), it.Value(), true, nil
}

// endScan records what an optimistic Serializable scan read.
func (tx *Tx) endScan(start, end, last []byte, stopped bool) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if !tx.finished() && !tx.locking() && !tx.readOnly {
		tx.recordRange(start, end, last, stopped)
	}
}

func (tx *Tx) lockScanLocked(start, end []byte) error {
	if !(tx.locking() && tx.iso == Serializable) || tx.readOnly || emptyRange(start, end) {
		return nil
	}
	return tx.lockLocked(lockmgr.Span(start, end), lockmgr.Shared, lockmgr.Block, tx.timeout)
}

// recordRange remembers the scanned range for validation; a scan stopped
// after key k read only [start, k] = [start, k+"\x00").
func (tx *Tx) recordRange(start, end, last []byte, stopped bool) {
	r := keyRange{start: bytes.Clone(start), end: bytes.Clone(end)}
	if stopped && last != nil {
		r.end = append(last, 0)
	}
	tx.ranges = append(tx.ranges, r)
}

// emptyRange reports whether [start, end) holds no key at all.
func emptyRange(start, end []byte) bool {
	return start != nil && end != nil && bytes.Compare(start, end) >= 0
}
