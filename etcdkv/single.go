package etcdkv

import (
	"bytes"
	"context"
	"fmt"
	"iter"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/engine"
	"github.com/txkv/txkv/txn"
)

// The single-key operations. Get is one linearizable etcd read. The writes
// are one-key transactions, as locally (txn/single.go), so that they keep
// the promises every commit keeps: their commit Txn compares that no other
// transaction's lock entry is on the key (a Pessimistic transaction's lock
// holds them off: they queue behind it and apply after its commit, where a
// bare etcd Put would have been overwritten by it, a lost update), and it
// carries a transaction record, so an ambiguous failure is resolved rather
// than returned (or, worse for Increment, retried by the caller and applied
// twice). A Put or Delete is one commit Txn when no lock is in the way;
// CompareAndSwap and Increment read first (two round trips) and are retried
// on a conflict.

func (e *eng) Get(ctx context.Context, key []byte) ([]byte, error) {
	if err := e.live(); err != nil {
		return nil, err
	}
	if err := e.checkKey(key); err != nil {
		return nil, err
	}
	resp, err := e.cli.Get(ctx, e.ks.data(key))
	if err != nil {
		return nil, e.mapErr(err)
	}
	if len(resp.Kvs) == 0 {
		return nil, txkv.ErrNotFound
	}
	return resp.Kvs[0].Value, nil
}

// singleKeyOpts runs the one-key transactions: Optimistic, and retried
// for as long as contention lasts (bounded by ctx), as the bare conditional
// loop they replace was.
var singleKeyOpts = &txkv.TxOptions{Strategy: txkv.Optimistic, Label: "single-key",
	Retry: &txkv.RetryPolicy{MaxAttempts: 10_000}}

func (e *eng) Put(ctx context.Context, key, value []byte) error {
	return e.Update(ctx, singleKeyOpts, func(tx engine.Tx) error { return tx.Put(key, value) })
}

func (e *eng) Delete(ctx context.Context, key []byte) error {
	return e.Update(ctx, singleKeyOpts, func(tx engine.Tx) error { return tx.Delete(key) })
}

// CompareAndSwap sets key to new if its value is old (old nil: the key is
// absent); new nil deletes it. The attempt is the local engine's
// (txn.SwapIn), reading from the snapshot.
func (e *eng) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	swapped := false
	err := e.Update(ctx, singleKeyOpts, func(tx engine.Tx) error {
		var err error
		swapped, err = txn.SwapIn(tx, tx.Get, key, old, new)
		return err
	})
	return swapped && err == nil, err
}

// Increment adds delta to the counter at key (8 bytes, big-endian; absent
// is 0) and returns the new value; the attempt is the local engine's
// (txn.IncrementIn): a sum past int64 is refused.
func (e *eng) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	var n int64
	err := e.Update(ctx, singleKeyOpts, func(tx engine.Tx) error {
		var err error
		n, err = txn.IncrementIn(tx, tx.Get, key, delta)
		return err
	})
	return n, err
}

// Watch streams committed writes under prefix from etcd's Watch: Version is
// the write's ModRevision (the writes of one Txn share it). fromVersion 0
// starts after the current revision; a compacted revision yields
// ErrCompacted; Close yields ErrClosed.
func (e *eng) Watch(ctx context.Context, prefix []byte, fromVersion uint64) iter.Seq2[txkv.Event, error] {
	return func(yield func(txkv.Event, error) bool) {
		if err := e.live(); err != nil {
			yield(txkv.Event{}, err)
			return
		}
		e.wg.Add(1)
		defer e.wg.Done()
		e.stats.watchers.Add(1)
		defer e.stats.watchers.Add(-1)
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		stop := context.AfterFunc(e.ctx, cancel)
		defer stop()
		opts := []clientv3.OpOption{clientv3.WithPrefix()}
		if fromVersion > 0 {
			opts = append(opts, clientv3.WithRev(int64(fromVersion)))
		}
		for resp := range e.cli.Watch(wctx, e.ks.data(prefix), opts...) {
			if err := e.watchErr(ctx, resp); err != nil {
				yield(txkv.Event{}, err)
				return
			}
			for _, ev := range resp.Events {
				out := txkv.Event{Key: bytes.Clone(e.ks.user(ev.Kv.Key)), Version: uint64(ev.Kv.ModRevision),
					Deleted: ev.Type == clientv3.EventTypeDelete}
				if !out.Deleted {
					out.Value = bytes.Clone(ev.Kv.Value)
				}
				if !yield(out, nil) {
					return
				}
			}
		}
		if err := e.watchEnd(ctx); err != nil {
			yield(txkv.Event{}, err)
		}
	}
}

func (e *eng) watchErr(ctx context.Context, resp clientv3.WatchResponse) error {
	if resp.CompactRevision != 0 {
		return fmt.Errorf("%w: etcd compacted revisions up to %d", txkv.ErrCompacted, resp.CompactRevision)
	}
	if err := resp.Err(); err != nil {
		if end := e.watchEnd(ctx); end != nil {
			return end
		}
		return err
	}
	return nil
}

// watchEnd says why a watch channel closed: Close, or ctx.
func (e *eng) watchEnd(ctx context.Context) error {
	if e.closed.Load() {
		return txkv.ErrClosed
	}
	return ctx.Err()
}

// Watchers returns the number of running Watch iterations.
func (e *eng) Watchers() int { return int(e.stats.watchers.Load()) }

// Locks lists the locks this handle's transactions hold and wait for (its
// registry, no round trip); other handles' entries are in etcd under l/
// and r/. LastDeadlock is the last deadlock found among this handle's
// transactions. HotKeys reports nothing: etcdkv keeps no contention memory.
func (e *eng) Locks() []txkv.LockInfo            { return e.reg.locks() }
func (e *eng) LastDeadlock() *txkv.DeadlockError { return e.reg.lastDeadlock() }
func (e *eng) HotKeys(int) []txkv.HotKey         { return nil }

// Advice is the decision guide's answer for a distributed workload.
func (e *eng) Advice() txkv.Advice { return txkv.Advise(txkv.Workload{Distributed: true}) }

var _ engine.Inspector = (*eng)(nil)
