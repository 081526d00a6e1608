package etcdkv

import (
	"bytes"
	"fmt"
	"slices"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/txn"
)

// The explicit locks and the locking reads and writes of strict 2PL, with
// the local engine's semantics (txn/lockops.go): same options, same
// errors.

// strict2PL reports whether reads of this transaction lock shared and read
// the latest state (Pessimistic at Serializable, a Hybrid retry).
func (t *tx) strict2PL() bool {
	return t.locking && t.serializable() && !t.opts.ReadOnly
}

// lockForWrite takes the exclusive lock a locking transaction's write
// needs now; under Snapshot a key changed after the snapshot then fails
// the transaction (first updater wins, as locally).
func (t *tx) lockForWrite(key []byte) error {
	if !t.locking {
		return nil
	}
	if err := t.lock(newRequest(key, nil, false, lockmgr.Exclusive), lockmgr.Block, t.lockTimeout); err != nil {
		return err
	}
	return t.checkUpdateConflict(key)
}

// checkUpdateConflict fails a Snapshot transaction whose locked key has a
// version newer than its snapshot (PostgreSQL's REPEATABLE READ rule).
func (t *tx) checkUpdateConflict(key []byte) error {
	if t.serializable() {
		return nil
	}
	if err := t.fixSnapshot(); err != nil {
		return err
	}
	resp, err := t.e.cli.Get(t.ctx, t.e.ks.data(key), clientv3.WithKeysOnly())
	if err != nil {
		return t.mapErr(err)
	}
	if len(resp.Kvs) > 0 && resp.Kvs[0].ModRevision > t.snap {
		t.e.stats.conflicts.Add(1)
		return t.fail(&txkv.ConflictError{TxID: t.id, Key: bytes.Clone(key), Reason: txn.ReasonUpdateConflict})
	}
	return nil
}

// readLatest reads a key this transaction holds a lock on: its own write,
// else under Serializable the latest committed value (the lock keeps it),
// under Snapshot the snapshot's, failing if a newer one exists.
func (t *tx) readLatest(key []byte) ([]byte, uint64, error) {
	k := t.e.ks.data(key)
	if w, ok := t.writes[k]; ok {
		if w == nil {
			return nil, 0, txkv.ErrNotFound
		}
		return bytes.Clone(*w), 0, nil
	}
	if err := t.checkUpdateConflict(key); err != nil {
		return nil, 0, err
	}
	opts := []clientv3.OpOption{}
	if !t.serializable() {
		opts = append(opts, clientv3.WithRev(t.snap))
	}
	resp, err := t.e.cli.Get(t.ctx, k, opts...)
	if err != nil {
		return nil, 0, t.mapErr(err)
	}
	t.e.stats.reads.Add(1)
	if len(resp.Kvs) == 0 {
		return nil, 0, txkv.ErrNotFound
	}
	return resp.Kvs[0].Value, uint64(resp.Kvs[0].ModRevision), nil
}

// checkExplicit is the check every explicit lock call starts with.
func (t *tx) checkExplicit(op string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.opts.ReadOnly {
		return fmt.Errorf("%w: %s locks", txkv.ErrReadOnly, op)
	}
	return nil
}

// lockRequest resolves a request's options against the transaction's
// default timeout, as the local engine does.
func (t *tx) lockRequest(opts []txkv.LockOption) txn.LockRequest {
	return txn.ResolveLockOptions(opts, t.lockTimeout)
}

// pointPolicy: SkipLocked on one key acts as NoWait.
func pointPolicy(p lockmgr.WaitPolicy) lockmgr.WaitPolicy {
	if p == lockmgr.SkipLocked {
		return lockmgr.NoWait
	}
	return p
}

// GetForShare locks key shared and returns its value (SELECT … FOR SHARE).
func (t *tx) GetForShare(key []byte, opts ...txkv.LockOption) ([]byte, error) {
	return t.getLocked(key, lockmgr.Shared, "GetForShare", opts)
}

// GetForUpdate locks key exclusively and returns its value (SELECT … FOR
// UPDATE), whatever the strategy.
func (t *tx) GetForUpdate(key []byte, opts ...txkv.LockOption) ([]byte, error) {
	return t.getLocked(key, lockmgr.Exclusive, "GetForUpdate", opts)
}

func (t *tx) getLocked(key []byte, mode lockmgr.Mode, op string, opts []txkv.LockOption) ([]byte, error) {
	if err := t.checkExplicit(op); err != nil {
		return nil, err
	}
	if err := t.e.checkKey(key); err != nil {
		return nil, err
	}
	r := t.lockRequest(opts)
	if err := t.lock(newRequest(key, nil, false, mode), pointPolicy(r.Policy), r.Timeout); err != nil {
		return nil, err
	}
	v, _, err := t.readLatest(key)
	return v, err
}

// LockRange locks [start, end) (nil: unbounded) in mode; start at or after
// end holds no key: nothing to lock.
func (t *tx) LockRange(start, end []byte, mode lockmgr.Mode, opts ...txkv.LockOption) error {
	if err := t.checkExplicit("LockRange"); err != nil {
		return err
	}
	if emptyRange(start, end) {
		return nil
	}
	r := t.lockRequest(opts)
	return t.lock(newRequest(start, end, true, mode), pointPolicy(r.Policy), r.Timeout)
}

// LockKeys locks keys in mode in byte order, whatever order they are given
// in (deadlock prevention by a consistent order); over etcd the requests
// are queued together, in one request (lockBatch).
func (t *tx) LockKeys(mode lockmgr.Mode, keys ...[]byte) error {
	if err := t.checkExplicit("LockKeys"); err != nil {
		return err
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)
	for _, k := range sorted {
		if err := t.e.checkKey(k); err != nil {
			return err
		}
	}
	reqs := make([]*entry, len(sorted))
	for i, k := range sorted {
		reqs[i] = newRequest(k, nil, false, mode)
	}
	return t.lockBatch(reqs, t.lockTimeout)
}

func emptyRange(start, end []byte) bool {
	return start != nil && end != nil && bytes.Compare(start, end) >= 0
}
