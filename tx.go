package txkv

import (
	"context"

	"github.com/txkv/txkv/txn"
)

// Tx is a transaction: a thin handle over txn.Tx, where the work is done.
// A Tx is not safe for concurrent use by several goroutines.
type Tx struct {
	t *txn.Tx
}

// ID returns the transaction's ID (increasing with start time).
func (tx *Tx) ID() uint64 { return tx.t.ID() }

// Isolation returns the transaction's isolation level.
func (tx *Tx) Isolation() Isolation { return tx.t.Isolation() }

// ReadTS returns the timestamp of the snapshot the transaction reads
// (math.MaxUint64 when it reads the latest versions under locks, as strict
// 2PL does). A Watch from ReadTS()+1 continues exactly after what it saw.
func (tx *Tx) ReadTS() uint64 { return tx.t.ReadTS() }

// Context returns the context the transaction is bound to.
func (tx *Tx) Context() context.Context { return tx.t.Context() }

// Strategy returns the strategy this transaction runs with.
func (tx *Tx) Strategy() Strategy { return tx.t.Strategy() }

// Get returns key's value as this transaction sees it (ErrNotFound if absent).
func (tx *Tx) Get(key []byte) ([]byte, error) { return tx.t.Get(key) }

// GetVersioned returns key's value and committed version (0 if absent).
func (tx *Tx) GetVersioned(key []byte) (value []byte, version uint64, err error) {
	return tx.t.GetVersioned(key)
}

// GetForShare locks key shared and reads it (SELECT … FOR SHARE).
func (tx *Tx) GetForShare(key []byte, opts ...LockOption) ([]byte, error) {
	return tx.t.GetForShare(key, opts...)
}

// GetForUpdate locks key exclusively and reads it (SELECT … FOR UPDATE).
func (tx *Tx) GetForUpdate(key []byte, opts ...LockOption) ([]byte, error) {
	return tx.t.GetForUpdate(key, opts...)
}

// Put writes key=value in this transaction.
func (tx *Tx) Put(key, value []byte) error { return tx.t.Put(key, value) }

// PutIfVersion writes key=value if key's committed version is version
// (0: absent); otherwise ErrVersionMismatch and the transaction stays usable.
func (tx *Tx) PutIfVersion(key, value []byte, version uint64) error {
	return tx.t.PutIfVersion(key, value, version)
}

// Delete removes key in this transaction.
func (tx *Tx) Delete(key []byte) error { return tx.t.Delete(key) }

// Scan calls fn for each key of [start, end) in order (nil: unbounded). fn's
// slices are valid only during the call and must not be modified.
func (tx *Tx) Scan(start, end []byte, fn func(key, value []byte) error) error {
	return tx.t.Scan(start, end, fn)
}

// ScanForUpdate locks and returns up to limit keys of [start, end) (<= 0: all).
func (tx *Tx) ScanForUpdate(start, end []byte, limit int, opts ...LockOption) ([]KV, error) {
	return tx.t.ScanForUpdate(start, end, limit, opts...)
}

// LockRange locks [start, end) in mode (nil: unbounded).
func (tx *Tx) LockRange(start, end []byte, mode LockMode, opts ...LockOption) error {
	return tx.t.LockRange(start, end, mode, opts...)
}

// LockKeys locks keys in mode in canonical order (deadlock prevention).
func (tx *Tx) LockKeys(mode LockMode, keys ...[]byte) error { return tx.t.LockKeys(mode, keys...) }

// Commit makes the writes durable and visible; on error it rolls back.
func (tx *Tx) Commit() error { return tx.t.Commit() }

// Rollback discards the transaction; after Commit it returns ErrTxDone.
func (tx *Tx) Rollback() error { return tx.t.Rollback() }
