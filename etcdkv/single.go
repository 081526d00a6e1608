package etcdkv

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"iter"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/engine"
)

// The single-key operations: each is one etcd request (Increment: one
// conditional Txn per attempt), linearizable.

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

func (e *eng) Put(ctx context.Context, key, value []byte) error {
	if err := e.live(); err != nil {
		return err
	}
	if err := e.checkKey(key); err != nil {
		return err
	}
	if err := e.checkValue(key, value); err != nil {
		return err
	}
	_, err := e.cli.Put(ctx, e.ks.data(key), string(value))
	return e.mapErr(err)
}

func (e *eng) Delete(ctx context.Context, key []byte) error {
	if err := e.live(); err != nil {
		return err
	}
	if err := e.checkKey(key); err != nil {
		return err
	}
	_, err := e.cli.Delete(ctx, e.ks.data(key))
	return e.mapErr(err)
}

// CompareAndSwap is one Txn: If Value(k) == old (old nil: CreateRevision
// == 0, absent) Then Put(new) (new nil: Delete).
func (e *eng) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	if err := e.live(); err != nil {
		return false, err
	}
	if err := e.checkKey(key); err != nil {
		return false, err
	}
	if err := e.checkValue(key, new); err != nil {
		return false, err
	}
	k := e.ks.data(key)
	cmp := clientv3.Compare(clientv3.Value(k), "=", string(old))
	if old == nil {
		cmp = clientv3.Compare(clientv3.CreateRevision(k), "=", 0)
	}
	op := clientv3.OpPut(k, string(new))
	if new == nil {
		op = clientv3.OpDelete(k)
	}
	resp, err := e.cli.Txn(ctx).If(cmp).Then(op).Commit()
	if err != nil {
		return false, e.mapErr(err)
	}
	return resp.Succeeded, nil
}

// Increment reads the counter and writes it back If ModRevision(k) is
// still what it read, again until that holds.
func (e *eng) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	if err := e.live(); err != nil {
		return 0, err
	}
	if err := e.checkKey(key); err != nil {
		return 0, err
	}
	k := e.ks.data(key)
	for {
		resp, err := e.cli.Get(ctx, k)
		if err != nil {
			return 0, e.mapErr(err)
		}
		var cur, rev int64
		if len(resp.Kvs) > 0 {
			kv := resp.Kvs[0]
			if len(kv.Value) != 8 {
				return 0, fmt.Errorf("%w: key %q holds %d bytes", txkv.ErrNotCounter, key, len(kv.Value))
			}
			cur, rev = int64(binary.BigEndian.Uint64(kv.Value)), kv.ModRevision
		}
		next := cur + delta
		val := binary.BigEndian.AppendUint64(nil, uint64(next))
		tr, err := e.cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", rev)).
			Then(clientv3.OpPut(k, string(val))).Commit()
		if err != nil {
			return 0, e.mapErr(err)
		}
		if tr.Succeeded {
			return next, nil
		}
	}
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
