package txkv

import (
	"context"

	"github.com/txkv/txkv/engine"

	"github.com/txkv/txkv/txn"
)

// Tx is a transaction: a thin handle over txn.Tx, where the work is done.
// A Tx is not safe for concurrent use by several goroutines.
//
// View recycles its txn.Tx when it returns (a read-only transaction then
// costs the garbage collector a 16-byte handle instead of a 288-byte
// transaction), so a handle remembers the ID it was issued for: a handle
// kept past the end of its transaction fails with ErrTxDone, even when its
// txn.Tx already serves another View.
//
// Over another engine (OpenEngine) the handle holds that engine's
// transaction in x instead (t is nil) and forwards every call to it.
//
// x is a pointer, not the interface itself, to keep the handle at 24 bytes:
// every View and Update allocates one, and at 32 bytes (an interface field)
// a point read in a View measured 7% slower (BenchmarkPointGet/txkv,
// -cpu 1, count 10).
type Tx struct {
	t  *txn.Tx
	id uint64
	x  *foreignTx
}

// foreignTx is another engine's transaction behind a handle.
type foreignTx struct{ engine.Tx }

func newTx(t *txn.Tx) *Tx { return &Tx{t: t, id: t.ID()} }

// live returns the transaction behind the handle, or ErrTxDone if the
// handle outlived it and the transaction object was recycled.
func (tx *Tx) live() (*txn.Tx, error) {
	if tx.t.ID() != tx.id {
		return nil, ErrTxDone
	}
	return tx.t, nil
}

// doneCtx is what Context returns for a handle whose transaction was
// recycled: the transaction is over, so its context is done.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrTxDone)
	return ctx
}()

// ID returns the transaction's ID (increasing with start time).
func (tx *Tx) ID() uint64 {
	if tx.x != nil {
		return tx.x.ID()
	}
	return tx.id
}

// Isolation returns the transaction's isolation level.
func (tx *Tx) Isolation() Isolation {
	if tx.x != nil {
		return tx.x.Isolation()
	}
	t, err := tx.live()
	if err != nil {
		return IsolationDefault
	}
	return t.Isolation()
}

// ReadTS returns the timestamp of the snapshot the transaction reads
// (math.MaxUint64 when it reads the latest versions under locks, as strict
// 2PL does). A Watch from ReadTS()+1 continues exactly after what it saw.
// It is 0 for a handle kept past the end of a View whose transaction was
// recycled.
func (tx *Tx) ReadTS() uint64 {
	if tx.x != nil {
		return tx.x.ReadTS()
	}
	t, err := tx.live()
	if err != nil {
		return 0
	}
	return t.ReadTS()
}

// Context returns the context the transaction is bound to (for a handle
// kept past the end of a View whose transaction was recycled: a done
// context, cause ErrTxDone).
func (tx *Tx) Context() context.Context {
	if tx.x != nil {
		return tx.x.Context()
	}
	t, err := tx.live()
	if err != nil {
		return doneCtx
	}
	return t.Context()
}

// Strategy returns the strategy this transaction runs with.
func (tx *Tx) Strategy() Strategy {
	if tx.x != nil {
		return tx.x.Strategy()
	}
	t, err := tx.live()
	if err != nil {
		return StrategyDefault
	}
	return t.Strategy()
}

// Get returns key's value as this transaction sees it (ErrNotFound if absent).
func (tx *Tx) Get(key []byte) ([]byte, error) {
	if tx.x != nil {
		return tx.x.Get(key)
	}
	t, err := tx.live()
	if err != nil {
		return nil, err
	}
	return t.Get(key)
}

// GetVersioned returns key's value and committed version (0 if absent).
func (tx *Tx) GetVersioned(key []byte) (value []byte, version uint64, err error) {
	if tx.x != nil {
		return tx.x.GetVersioned(key)
	}
	t, err := tx.live()
	if err != nil {
		return nil, 0, err
	}
	return t.GetVersioned(key)
}

// GetForShare locks key shared and reads it (SELECT … FOR SHARE).
func (tx *Tx) GetForShare(key []byte, opts ...LockOption) ([]byte, error) {
	if tx.x != nil {
		return tx.x.GetForShare(key, opts...)
	}
	t, err := tx.live()
	if err != nil {
		return nil, err
	}
	return t.GetForShare(key, opts...)
}

// GetForUpdate locks key exclusively and reads it (SELECT … FOR UPDATE).
func (tx *Tx) GetForUpdate(key []byte, opts ...LockOption) ([]byte, error) {
	if tx.x != nil {
		return tx.x.GetForUpdate(key, opts...)
	}
	t, err := tx.live()
	if err != nil {
		return nil, err
	}
	return t.GetForUpdate(key, opts...)
}

// Put writes key=value in this transaction.
func (tx *Tx) Put(key, value []byte) error {
	if tx.x != nil {
		return tx.x.Put(key, value)
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.Put(key, value)
}

// PutIfVersion writes key=value if key's committed version is version
// (0: absent); otherwise ErrVersionMismatch and the transaction stays usable.
func (tx *Tx) PutIfVersion(key, value []byte, version uint64) error {
	if tx.x != nil {
		return tx.x.PutIfVersion(key, value, version)
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.PutIfVersion(key, value, version)
}

// Delete removes key in this transaction.
func (tx *Tx) Delete(key []byte) error {
	if tx.x != nil {
		return tx.x.Delete(key)
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.Delete(key)
}

// Scan calls fn for each key of [start, end) in order (nil: unbounded). fn's
// slices are valid only during the call and must not be modified.
func (tx *Tx) Scan(start, end []byte, fn func(key, value []byte) error) error {
	if tx.x != nil {
		return tx.x.Scan(start, end, fn)
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.Scan(start, end, fn)
}

// ScanForUpdate locks and returns up to limit keys of [start, end) (<= 0: all).
func (tx *Tx) ScanForUpdate(start, end []byte, limit int, opts ...LockOption) ([]KV, error) {
	if tx.x != nil {
		return tx.x.ScanForUpdate(start, end, limit, opts...)
	}
	t, err := tx.live()
	if err != nil {
		return nil, err
	}
	return t.ScanForUpdate(start, end, limit, opts...)
}

// LockRange locks [start, end) in mode (nil: unbounded).
func (tx *Tx) LockRange(start, end []byte, mode LockMode, opts ...LockOption) error {
	if tx.x != nil {
		return tx.x.LockRange(start, end, mode, opts...)
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.LockRange(start, end, mode, opts...)
}

// LockKeys locks keys in mode in canonical order (deadlock prevention).
func (tx *Tx) LockKeys(mode LockMode, keys ...[]byte) error {
	if tx.x != nil {
		return tx.x.LockKeys(mode, keys...)
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.LockKeys(mode, keys...)
}

// Commit makes the writes durable and visible; on error it rolls back.
func (tx *Tx) Commit() error {
	if tx.x != nil {
		return tx.x.Commit()
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.Commit()
}

// Rollback discards the transaction. It is safe to call whenever the
// transaction may have ended — the usual `defer tx.Rollback()` — and returns
// ErrTxDone if it had: after Commit (successful or not), and after the
// transaction was rolled back for you — its context was cancelled or timed
// out, it was chosen as a deadlock victim, or the DB closed. In those cases
// the error that ended it is what its other calls return (ctx.Err(), the
// *DeadlockError, ErrClosed); Rollback's ErrTxDone only says there was
// nothing left to roll back.
func (tx *Tx) Rollback() error {
	if tx.x != nil {
		return tx.x.Rollback()
	}
	t, err := tx.live()
	if err != nil {
		return err
	}
	return t.Rollback()
}
