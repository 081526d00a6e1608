package engine

import (
	"context"
	"errors"
	"iter"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/txn"
)

// Sentinel errors of engines other than the local one; the root package
// re-exports them.
var (
	// ErrNotSupported: the engine does not implement this operation or
	// option (yet). The error wrapping it names which.
	ErrNotSupported = errors.New("txkv: not supported by this engine")
	// ErrTxnTooLarge: the transaction needs more operations in one atomic
	// request than the engine allows (etcd: --max-txn-ops, 128 by
	// default). The error wrapping it names the limit.
	ErrTxnTooLarge = errors.New("txkv: transaction too large")
	// ErrCommitUnknown: the commit was sent but its outcome could not be
	// learned before the context ended (the connection dropped, the
	// cluster did not answer). It may or may not have been applied; it is
	// not retryable as is.
	ErrCommitUnknown = errors.New("txkv: commit outcome unknown")
)

// Engine is a database engine a *txkv.DB can run over (txkv.OpenEngine).
// Its methods mean what the *txkv.DB methods of the same names document;
// it must be safe for concurrent use.
type Engine interface {
	Begin(ctx context.Context, opts *txn.TxOptions) (Tx, error)
	// Update runs fn and commits, retrying retryable errors per the retry
	// policy; View runs fn read-only. The engine owns the retry loop.
	Update(ctx context.Context, opts *txn.TxOptions, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error

	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
	Delete(ctx context.Context, key []byte) error
	CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error)
	Increment(ctx context.Context, key []byte, delta int64) (int64, error)

	Watch(ctx context.Context, prefix []byte, fromVersion uint64) iter.Seq2[txn.Event, error]
	Stats() txn.Stats
	// Close ends the engine's transactions and waits for its goroutines.
	Close() error
}

// Tx is one transaction of an Engine: the method set of *txn.Tx.
type Tx interface {
	ID() uint64
	Isolation() txn.Isolation
	ReadTS() uint64
	Context() context.Context
	Strategy() txn.Strategy

	Get(key []byte) ([]byte, error)
	GetVersioned(key []byte) (value []byte, version uint64, err error)
	GetForShare(key []byte, opts ...txn.LockOption) ([]byte, error)
	GetForUpdate(key []byte, opts ...txn.LockOption) ([]byte, error)
	Put(key, value []byte) error
	PutIfVersion(key, value []byte, version uint64) error
	Delete(key []byte) error
	Scan(start, end []byte, fn func(key, value []byte) error) error
	ScanForUpdate(start, end []byte, limit int, opts ...txn.LockOption) ([]txn.KV, error)
	LockRange(start, end []byte, mode lockmgr.Mode, opts ...txn.LockOption) error
	LockKeys(mode lockmgr.Mode, keys ...[]byte) error

	Commit() error
	Rollback() error
}

// The local transaction has exactly this method set.
var _ Tx = (*txn.Tx)(nil)

// Inspector is the optional introspection of an Engine (pg_locks, the last
// deadlock, hot keys, watchers, advice). A DB over an Engine without it
// reports nothing: no locks, no deadlock, no hot keys.
type Inspector interface {
	Locks() []lockmgr.LockInfo
	LastDeadlock() *lockmgr.DeadlockError
	HotKeys(n int) []txn.HotKey
	Watchers() int
	Advice() txn.Advice
}
