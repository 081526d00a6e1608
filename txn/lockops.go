package txn

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
)

// LockOption changes how an explicit lock request waits.
type LockOption func(*lockOptions)

type lockOptions struct {
	policy  lockmgr.WaitPolicy
	timeout time.Duration // lockmgr's convention: > 0, 0 (do not wait), Forever
}

// NoWait makes a lock request fail at once with ErrLockNotAvailable instead
// of waiting (SELECT … FOR UPDATE NOWAIT). It never queues; the transaction
// stays usable.
func NoWait() LockOption { return func(o *lockOptions) { o.policy = lockmgr.NoWait } }

// SkipLocked makes ScanForUpdate skip rows whose lock cannot be granted now
// (SELECT … FOR UPDATE SKIP LOCKED). On a single-key request it acts as NoWait.
func SkipLocked() LockOption { return func(o *lockOptions) { o.policy = lockmgr.SkipLocked } }

// WaitTimeout bounds this request's wait (ErrLockTimeout), in the one
// convention of wait bounds (lockmgr.Forever): d > 0 waits at most d; 0
// does not wait — a lock not free now fails at once with ErrLockTimeout,
// never queued, so it can make nobody a deadlock victim; Forever (any
// negative) waits without a bound.
func WaitTimeout(d time.Duration) LockOption {
	return func(o *lockOptions) { o.timeout = d }
}

func (tx *Tx) lockOptions(opts []LockOption) lockOptions { return applyLockOptions(opts, tx.timeout) }

// applyLockOptions applies opts, in order, to a request that blocks for at
// most def.
func applyLockOptions(opts []LockOption, def time.Duration) lockOptions {
	o := lockOptions{policy: lockmgr.Block, timeout: def}
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

func pointPolicy(p lockmgr.WaitPolicy) lockmgr.WaitPolicy {
	if p == lockmgr.SkipLocked {
		return lockmgr.NoWait
	}
	return p
}

// GetForShare locks key shared and returns its value (SELECT … FOR SHARE).
func (tx *Tx) GetForShare(key []byte, opts ...LockOption) ([]byte, error) {
	return tx.getLocked(key, lockmgr.Shared, "GetForShare", opts)
}

// GetForUpdate locks key exclusively and returns its value (SELECT … FOR
// UPDATE), whatever the strategy. Under Serializable the value is the latest
// committed one (the lock keeps it so until commit); under Snapshot a key
// changed after the snapshot fails with ErrConflict, as PostgreSQL's
// REPEATABLE READ does.
func (tx *Tx) GetForUpdate(key []byte, opts ...LockOption) ([]byte, error) {
	return tx.getLocked(key, lockmgr.Exclusive, "GetForUpdate", opts)
}

func (tx *Tx) getLocked(key []byte, mode lockmgr.Mode, op string, opts []LockOption) ([]byte, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.checkExplicitLocked(key, op); err != nil {
		return nil, err
	}
	o := tx.lockOptions(opts)
	if err := tx.lockLocked(lockmgr.Point(key), mode, pointPolicy(o.policy), o.timeout); err != nil {
		return nil, err
	}
	tx.noteTriedLocked(key, o.policy)
	tx.nReads++
	v, _, ok, err := tx.readLockedKeyLocked(key)
	if err != nil {
		return nil, err
	}
	if own, deleted, mine := tx.writes.Get(key); mine {
		v, ok = own, !deleted
	}
	if !ok {
		return nil, ErrNotFound
	}
	return cloneBytes(v), nil
}

func (tx *Tx) checkExplicitLocked(key []byte, op string) error {
	if err := tx.usableLocked(); err != nil {
		return err
	}
	if tx.readOnly {
		return readOnlyLock(op)
	}
	return tx.db.checkKey(key)
}

// readLockedKeyLocked reads a key this transaction holds a lock on.
func (tx *Tx) readLockedKeyLocked(key []byte) ([]byte, uint64, bool, error) {
	if tx.iso == Snapshot {
		if err := tx.checkUpdateConflictLocked(key); err != nil {
			return nil, 0, false, err
		}
		return tx.snap.Get(key)
	}
	tx.latestReads = true
	latest, done := tx.latestReader()
	defer done()
	return tx.saw(latest.Get(key))
}

// latestReader returns a reader of the latest installed versions: the
// transaction's own reader when it already is one (strict 2PL), otherwise a
// short-lived one the caller closes with done (which keeps what it saw: see
// settleLocked).
func (tx *Tx) latestReader() (rd *mvcc.Snapshot, done func()) {
	if tx.snap.TS() == math.MaxUint64 {
		return &tx.snap, func() {}
	}
	rd = tx.db.store.Latest()
	return rd, func() {
		tx.maxSeen = max(tx.maxSeen, rd.Seen())
		rd.Close()
	}
}

// KV is a key, its value and its version, as ScanForUpdate returns them.
type KV struct {
	Key, Value []byte
	Version    uint64
}

// ScanForUpdate locks exclusively, in key order, the keys of [start, end)
// and returns them with their values, at most limit (<= 0: no limit). With
// SkipLocked a key whose lock cannot be granted now is skipped, never waited
// for (the limit counts what is returned) — the job-queue pattern; with
// NoWait the first unavailable key fails the call. Like PostgreSQL's SKIP
// LOCKED, the result is deliberately not a consistent snapshot.
func (tx *Tx) ScanForUpdate(start, end []byte, limit int, opts ...LockOption) ([]KV, error) {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usableLocked(); err != nil {
		return nil, err
	}
	if tx.readOnly {
		return nil, readOnlyLock("ScanForUpdate")
	}
	if emptyRange(start, end) {
		return nil, nil
	}
	o := tx.lockOptions(opts)
	var out []KV
	from := start
	for limit <= 0 || len(out) < limit {
		cands, more, err := tx.candidatesLocked(from, end, candidateBatch(limit, len(out)))
		if err != nil {
			return nil, err
		}
		for _, key := range cands {
			if limit > 0 && len(out) >= limit {
				return out, nil
			}
			kv, ok, err := tx.claimLocked(key, o)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, kv)
			}
		}
		if !more {
			break
		}
		last := cands[len(cands)-1]
		from = append(append(make([]byte, 0, len(last)+1), last...), 0) // the smallest key after last
	}
	return out, nil
}

// candidateBatch is how many keys ScanForUpdate reads before it claims them:
// a few more than it still needs, since SKIP LOCKED skips the rows other
// workers hold (the head of a job queue); everything if there is no limit.
// Reading candidates in batches keeps a claim of one job from a long queue
// cheap, and no reader stays open while a lock is waited for.
func candidateBatch(limit, have int) int {
	if limit <= 0 {
		return 256
	}
	return max(32, 2*(limit-have))
}

// candidatesLocked lists up to n live keys of [start, end) in the latest
// committed state merged with this transaction's writes, and whether the
// range may hold more after them.
func (tx *Tx) candidatesLocked(start, end []byte, n int) (keys [][]byte, more bool, err error) {
	latest, done := tx.latestReader()
	defer done()
	it := latest.Iter(start, end, &tx.writes)
	defer it.Close()
	for it.Next() {
		if len(keys) == n {
			return keys, true, nil
		}
		keys = append(keys, bytes.Clone(it.Key()))
	}
	return keys, false, it.Err()
}

// claimLocked locks one candidate and re-reads it: it may have been deleted
// while this transaction waited for the lock.
func (tx *Tx) claimLocked(key []byte, o lockOptions) (KV, bool, error) {
	reason := tx.reason
	err := tx.lockLocked(lockmgr.Point(key), lockmgr.Exclusive, o.policy, o.timeout)
	if o.policy == lockmgr.SkipLocked && errors.Is(err, lockmgr.ErrLockNotAvailable) {
		tx.reason = reason // a skipped row is no failure the caller saw
		return KV{}, false, nil
	}
	if err != nil {
		return KV{}, false, err
	}
	tx.noteTriedLocked(key, o.policy)
	v, ver, ok, err := tx.readLockedKeyLocked(key)
	if err != nil {
		return KV{}, false, err
	}
	if own, deleted, mine := tx.writes.Get(key); mine {
		v, ok = own, !deleted
	}
	if !ok {
		return KV{}, false, nil
	}
	return KV{Key: key, Value: cloneBytes(v), Version: ver}, true, nil
}

// LockRange locks the key range [start, end) (nil: unbounded) in mode: no
// other transaction can write a key of the range (Exclusive: nor lock one
// shared) until this one ends — the date-range booking pattern. Ranges follow
// one rule everywhere (Scan, ScanForUpdate, LockRange): [start, end) with
// start at or after end holds no key — nothing to read or lock, no error.
func (tx *Tx) LockRange(start, end []byte, mode lockmgr.Mode, opts ...LockOption) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usableLocked(); err != nil {
		return err
	}
	if tx.readOnly {
		return readOnlyLock("LockRange")
	}
	if emptyRange(start, end) {
		return nil // no key lies in it: nothing to lock
	}
	o := tx.lockOptions(opts)
	return tx.lockLocked(lockmgr.Span(start, end), mode, pointPolicy(o.policy), o.timeout)
}

// LockKeys locks keys in mode in one canonical (byte) order, whatever order
// they are given in: the guide's deadlock prevention by consistent lock
// ordering, as one call.
func (tx *Tx) LockKeys(mode lockmgr.Mode, keys ...[]byte) error {
	tx.mu.Lock()
	defer tx.mu.Unlock()
	if err := tx.usableLocked(); err != nil {
		return err
	}
	if tx.readOnly {
		return readOnlyLock("LockKeys")
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)
	for _, k := range sorted {
		if err := tx.db.checkKey(k); err != nil {
			return err
		}
		if err := tx.lockLocked(lockmgr.Point(k), mode, lockmgr.Block, tx.timeout); err != nil {
			return err
		}
	}
	return nil
}

// noteTriedLocked remembers a key locked without waiting (NoWait,
// SkipLocked), which a Hybrid retry must not prelock with a blocking request.
func (tx *Tx) noteTriedLocked(key []byte, p lockmgr.WaitPolicy) {
	if p == lockmgr.Block {
		return
	}
	if tx.tried == nil {
		tx.tried = make(map[string]struct{})
	}
	tx.tried[string(key)] = struct{}{}
}

// LockRequest is what a request's LockOptions ask for, resolved in order:
// its wait policy (lockmgr.Block unless NoWait or SkipLocked), and the
// bound of its wait. Engines other than this one read lock options through
// it (ResolveLockOptions).
type LockRequest struct {
	Policy  lockmgr.WaitPolicy
	Timeout time.Duration // the one convention: > 0 at most, 0 do not wait, Forever no bound
}

// ResolveLockOptions applies opts to a default request: Block, waiting at
// most def (the engine's lock timeout for the transaction).
func ResolveLockOptions(opts []LockOption, def time.Duration) LockRequest {
	o := applyLockOptions(opts, def)
	return LockRequest{Policy: o.policy, Timeout: o.timeout}
}
