package etcdkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/engine"
	"github.com/txkv/txkv/lockmgr"
)

// tx is an optimistic transaction over etcd. Its snapshot is the revision
// S of its first read (under Snapshot isolation: of its first read or
// write); later reads use WithRev(S), linearizably. Writes are buffered;
// Commit sends one etcd Txn whose compares validate the reads (see
// commit.go). A tx is not safe for concurrent use.
type tx struct {
	e       *eng
	ctx     context.Context
	id      uint64
	opts    txkv.TxOptions
	managed bool // run by Update or View: Commit and Rollback are theirs
	done    bool
	err     error // the error that ended it, if any

	locking     bool          // strict two-phase locking (Pessimistic, a Hybrid retry)
	lockTimeout time.Duration // the default bound of lock waits (the one convention)
	locks       lockState
	born        time.Time // its first attempt's start: the youngest is the victim across handles
	pub         *waitPub  // the current wait's published edges (waitfor.go), if any

	snap   int64            // S; 0 until the first read
	reads  map[string]int64 // etcd key → ModRevision seen at S (0: absent)
	ranges []scanned
	writes map[string]*[]byte // etcd key → value (nil pointer: delete)
	expect map[string]int64   // PutIfVersion: etcd key → required ModRevision
	// seen holds what the failed commit of the attempt before read at S
	// (retryPlan.seen): reads of these keys need no request.
	seen map[string]*mvccpb.KeyValue
	// failedAt is what this attempt's failed commit read, for the retry.
	failedAt *seenAt
}

// scanned is a range read at S and the keys it saw.
type scanned struct {
	from, to string
}

var _ engine.Tx = (*tx)(nil)

func newTx(e *eng, ctx context.Context, o txkv.TxOptions, managed bool) *tx {
	timeout := o.LockTimeout
	if timeout == 0 {
		timeout = e.opts.LockTimeout
	}
	return &tx{e: e, ctx: ctx, id: e.ids.Add(1), opts: o, managed: managed,
		locking: o.Strategy == txkv.Pessimistic, lockTimeout: timeout,
		reads: map[string]int64{}, writes: map[string]*[]byte{}, expect: map[string]int64{}}
}

func (t *tx) ID() uint64                { return t.id }
func (t *tx) Isolation() txkv.Isolation { return t.opts.Isolation }
func (t *tx) Context() context.Context  { return t.ctx }
func (t *tx) Strategy() txkv.Strategy {
	if t.locking {
		return txkv.Pessimistic // also a Hybrid retry, as locally
	}
	if t.opts.Strategy == txkv.Adaptive {
		return txkv.Hybrid // Adaptive runs as Hybrid (doc.go)
	}
	return t.opts.Strategy
}
func (t *tx) ReadTS() uint64     { return uint64(t.snap) }
func (t *tx) serializable() bool { return t.opts.Isolation == txkv.Serializable }

// usable returns the error that forbids another call, if any.
func (t *tx) usable() error {
	switch {
	case t.done:
		if t.err != nil {
			return t.err
		}
		return txkv.ErrTxDone
	case t.e.closed.Load():
		return txkv.ErrClosed
	case t.ctx.Err() != nil:
		return t.ctx.Err()
	}
	return nil
}

func (t *tx) writable(op string) error {
	if err := t.usable(); err != nil {
		return err
	}
	if t.opts.ReadOnly {
		return fmt.Errorf("%w: %s writes", txkv.ErrReadOnly, op)
	}
	return nil
}

// mapErr maps an etcd error of this transaction's request.
// A read at a snapshot etcd has compacted away is a retryable conflict.
func (t *tx) mapErr(err error) error {
	if err != nil && t.ctx.Err() != nil {
		return t.ctx.Err()
	}
	if errors.Is(err, rpctypes.ErrCompacted) {
		return &txkv.ConflictError{TxID: t.id, Reason: "snapshot-compacted"}
	}
	return t.e.mapErr(err)
}

// get reads etcd key k at S, fixing S on the first read.
func (t *tx) get(k string) (*clientv3.GetResponse, error) {
	if kv, ok := t.seen[k]; ok {
		delete(t.seen, k)
		return seenResponse(kv), nil
	}
	var opts []clientv3.OpOption
	if t.snap != 0 {
		opts = append(opts, clientv3.WithRev(t.snap))
	}
	resp, err := t.e.cli.Get(t.ctx, k, opts...)
	if err != nil {
		return nil, t.mapErr(err)
	}
	if t.snap == 0 {
		t.snap = resp.Header.Revision
	}
	t.e.stats.reads.Add(1)
	return resp, nil
}

// fixSnapshot fixes S before the first write of a Snapshot transaction, so
// that first-committer-wins sees writes committed after that point.
func (t *tx) fixSnapshot() error {
	if t.snap != 0 || t.serializable() {
		return nil
	}
	_, err := t.get(t.e.ks.data([]byte{0}))
	return err
}

// Get returns key's value as the transaction sees it.
func (t *tx) Get(key []byte) ([]byte, error) {
	v, _, err := t.GetVersioned(key)
	return v, err
}

// GetVersioned returns key's value at S and its ModRevision (0: absent);
// a key this transaction wrote reads its own write, version 0.
func (t *tx) GetVersioned(key []byte) ([]byte, uint64, error) {
	if err := t.usable(); err != nil {
		return nil, 0, err
	}
	if err := t.e.checkKey(key); err != nil {
		return nil, 0, err
	}
	k := t.e.ks.data(key)
	if w, ok := t.writes[k]; ok {
		if w == nil {
			return nil, 0, txkv.ErrNotFound
		}
		return bytes.Clone(*w), 0, nil
	}
	if t.strict2PL() {
		if err := t.lock(newRequest(key, nil, false, lockmgr.Shared), lockmgr.Block, t.lockTimeout); err != nil {
			return nil, 0, err
		}
		return t.readLatest(key)
	}
	resp, err := t.get(k)
	if err != nil {
		return nil, 0, err
	}
	if len(resp.Kvs) == 0 {
		t.noteRead(k, 0)
		return nil, 0, txkv.ErrNotFound
	}
	kv := resp.Kvs[0]
	t.noteRead(k, kv.ModRevision)
	return kv.Value, uint64(kv.ModRevision), nil
}

func (t *tx) noteRead(k string, rev int64) {
	if _, ok := t.reads[k]; !ok {
		t.reads[k] = rev
	}
}

// Scan calls fn for each key of [start, end) at S, with this transaction's
// own writes applied, in key order.
func (t *tx) Scan(start, end []byte, fn func(key, value []byte) error) error {
	if err := t.usable(); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("%w: nil function", txkv.ErrInvalidOption)
	}
	from, to := t.e.ks.dataRange(start, end)
	if to <= from && end != nil {
		return nil
	}
	// Strict 2PL locks the range shared and reads the latest state, which
	// the lock keeps: nothing to validate. Otherwise the scan reads S and
	// is validated at commit.
	latest := t.strict2PL()
	if latest {
		if err := t.lock(newRequest(start, end, true, lockmgr.Shared), lockmgr.Block, t.lockTimeout); err != nil {
			return err
		}
	}
	opts := []clientv3.OpOption{clientv3.WithRange(to)}
	if t.snap != 0 && !latest {
		opts = append(opts, clientv3.WithRev(t.snap))
	}
	resp, err := t.e.cli.Get(t.ctx, from, opts...)
	if err != nil {
		return t.mapErr(err)
	}
	t.e.stats.reads.Add(int64(len(resp.Kvs)))
	if !latest {
		if t.snap == 0 {
			t.snap = resp.Header.Revision
		}
		t.ranges = append(t.ranges, scanned{from: from, to: to})
	}
	merged := map[string][]byte{}
	for _, kv := range resp.Kvs {
		if !latest {
			t.noteRead(string(kv.Key), kv.ModRevision)
		}
		merged[string(kv.Key)] = kv.Value
	}
	for k, w := range t.writes {
		if k >= from && k < to {
			if w == nil {
				delete(merged, k)
			} else {
				merged[k] = *w
			}
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(t.e.ks.user([]byte(k)), merged[k]); err != nil {
			return err
		}
	}
	return nil
}

// Put buffers key=value.
func (t *tx) Put(key, value []byte) error {
	if err := t.writable("Put"); err != nil {
		return err
	}
	if err := t.e.checkKey(key); err != nil {
		return err
	}
	if err := t.e.checkValue(key, value); err != nil {
		return err
	}
	if err := t.fixSnapshot(); err != nil {
		return err
	}
	if err := t.lockForWrite(key); err != nil {
		return err
	}
	v := bytes.Clone(value)
	if v == nil {
		v = []byte{}
	}
	t.writes[t.e.ks.data(key)] = &v
	return nil
}

// Delete buffers key's removal.
func (t *tx) Delete(key []byte) error {
	if err := t.writable("Delete"); err != nil {
		return err
	}
	if err := t.e.checkKey(key); err != nil {
		return err
	}
	if err := t.fixSnapshot(); err != nil {
		return err
	}
	if err := t.lockForWrite(key); err != nil {
		return err
	}
	t.writes[t.e.ks.data(key)] = nil
	return nil
}

// PutIfVersion buffers key=value if key's latest committed ModRevision is
// version (0: absent), and makes the commit require it still is.
func (t *tx) PutIfVersion(key, value []byte, version uint64) error {
	if err := t.writable("PutIfVersion"); err != nil {
		return err
	}
	if err := t.e.checkKey(key); err != nil {
		return err
	}
	k := t.e.ks.data(key)
	resp, err := t.e.cli.Get(t.ctx, k)
	if err != nil {
		return t.mapErr(err)
	}
	var actual int64
	if len(resp.Kvs) > 0 {
		actual = resp.Kvs[0].ModRevision
	}
	if uint64(actual) != version {
		return &txkv.VersionMismatchError{Key: bytes.Clone(key), Expected: version, Actual: uint64(actual)}
	}
	if err := t.Put(key, value); err != nil {
		return err
	}
	t.expect[k] = actual
	return nil
}

// Rollback discards the transaction.
func (t *tx) Rollback() error {
	if t.managed {
		return txkv.ErrTxManaged
	}
	if t.done {
		return txkv.ErrTxDone
	}
	t.rollback()
	return nil
}

func (t *tx) rollback() {
	if !t.done {
		t.done = true
		t.e.stats.aborts.Add(1)
		t.release()
	}
}

// fail ends the transaction with err (a deadlock, a lost lock): it is
// rolled back, its locks released, and later calls return err.
func (t *tx) fail(err error) error {
	if !t.done {
		t.err = err
		t.rollback()
	}
	return err
}

// Commit validates and applies the transaction in one etcd Txn.
func (t *tx) Commit() error {
	if t.managed {
		return txkv.ErrTxManaged
	}
	return t.commit()
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// seenResponse is the response a Get at S would have given for a key the
// failed commit before read at S (kv nil: absent).
func seenResponse(kv *mvccpb.KeyValue) *clientv3.GetResponse {
	r := &etcdserverpb.RangeResponse{Header: &etcdserverpb.ResponseHeader{}}
	if kv != nil {
		r.Kvs, r.Count = []*mvccpb.KeyValue{kv}, 1
	}
	return (*clientv3.GetResponse)(r)
}
