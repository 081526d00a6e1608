package etcdkv_test

import (
	"context"
	"iter"
	"sync/atomic"
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/engine"
	"github.com/txkv/txkv/etcdkv"
	"github.com/txkv/txkv/txn"
)

// spread is one *txkv.DB over several etcdkv handles of one database, each
// with its own client of one member: every call (a transaction, a
// single-key operation, a watch) goes to the next handle in turn. It lets
// the conformance suite, which opens one DB per test, run its concurrent
// transactions across the members of a cluster.
type spread struct {
	es   []engine.Engine
	next atomic.Uint64
}

var (
	_ engine.Engine    = (*spread)(nil)
	_ engine.Inspector = (*spread)(nil)
)

// openSpread opens n handles of one new database, handle i over a client
// of member i (mod the cluster's size), as one DB; all closed at the end
// of the test.
func openSpread(t testing.TB, n int) *txkv.DB {
	t.Helper()
	prefix := testPrefix(t)
	s := &spread{}
	for i := range n {
		e, err := etcdkv.NewEngine(newClient(t, i), &etcdkv.Options{Prefix: prefix})
		if err != nil {
			t.Fatalf("etcdkv.NewEngine: %v", err)
		}
		s.es = append(s.es, e)
	}
	db := txkv.OpenEngine(s)
	t.Cleanup(func() { db.Close() })
	return db
}

func (s *spread) pick() engine.Engine {
	return s.es[(s.next.Add(1)-1)%uint64(len(s.es))]
}

func (s *spread) Begin(ctx context.Context, opts *txn.TxOptions) (engine.Tx, error) {
	return s.pick().Begin(ctx, opts)
}

func (s *spread) Update(ctx context.Context, opts *txn.TxOptions, fn func(engine.Tx) error) error {
	return s.pick().Update(ctx, opts, fn)
}

func (s *spread) View(ctx context.Context, fn func(engine.Tx) error) error {
	return s.pick().View(ctx, fn)
}

func (s *spread) Get(ctx context.Context, key []byte) ([]byte, error) {
	return s.pick().Get(ctx, key)
}

func (s *spread) Put(ctx context.Context, key, value []byte) error {
	return s.pick().Put(ctx, key, value)
}

func (s *spread) Delete(ctx context.Context, key []byte) error { return s.pick().Delete(ctx, key) }

func (s *spread) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	return s.pick().CompareAndSwap(ctx, key, old, new)
}

func (s *spread) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	return s.pick().Increment(ctx, key, delta)
}

func (s *spread) Watch(ctx context.Context, prefix []byte, from uint64) iter.Seq2[txn.Event, error] {
	return s.pick().Watch(ctx, prefix, from)
}

// Stats adds up the handles' counters.
func (s *spread) Stats() txn.Stats {
	var sum txn.Stats
	for _, e := range s.es {
		st := e.Stats()
		sum.Commits += st.Commits
		sum.Aborts += st.Aborts
		sum.Conflicts += st.Conflicts
		sum.Retries += st.Retries
		sum.Reads += st.Reads
		sum.Writes += st.Writes
	}
	return sum
}

// Close closes every handle; the first error wins.
func (s *spread) Close() error {
	var first error
	for _, e := range s.es {
		if err := e.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *spread) inspector() engine.Inspector { return s.es[0].(engine.Inspector) }

func (s *spread) Locks() []txkv.LockInfo            { return s.inspector().Locks() }
func (s *spread) LastDeadlock() *txkv.DeadlockError { return s.inspector().LastDeadlock() }
func (s *spread) HotKeys(n int) []txn.HotKey        { return s.inspector().HotKeys(n) }
func (s *spread) Advice() txn.Advice                { return s.inspector().Advice() }

func (s *spread) Watchers() int {
	n := 0
	for _, e := range s.es {
		n += e.(engine.Inspector).Watchers()
	}
	return n
}
