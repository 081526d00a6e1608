package txn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The one-key helpers run as one transaction each; which kind depends on
// where the commit spends its time (measured: BenchmarkCounter).
//
//   - On a file, a commit waits for fsync, so an optimistic read-modify-write
//     of a hot key would usually find it changed by commit time. There the
//     helpers lock: one exclusive lock held across read and write — never
//     aborted by a conflict, queued FIFO under contention.
//   - In memory a commit takes microseconds; handing a lock from goroutine
//     to goroutine (park, unpark) costs more than the rare conflict, so the
//     helpers run optimistically and retry (validation on one key: still
//     linearizable, at the commit timestamp).
var (
	singleKeyLocked     = &TxOptions{Strategy: Pessimistic, Isolation: Serializable, Label: "single-key"}
	singleKeyOptimistic = &TxOptions{Strategy: Optimistic, Isolation: Serializable, Label: "single-key",
		Retry: &RetryPolicy{MaxAttempts: 10_000, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}}
)

func (db *DB) singleKey() *TxOptions {
	if db.log != nil {
		return singleKeyLocked
	}
	return singleKeyOptimistic
}

// readForRMW reads the key a one-key read-modify-write will write: under a
// lock when the helper locks, from the snapshot (validated) otherwise.
func readForRMW(tx *Tx, key []byte) ([]byte, error) {
	if tx.Strategy() == Pessimistic {
		return tx.GetForUpdate(key)
	}
	return tx.Get(key)
}

// Put writes one key in its own transaction (a blind write: nothing to
// validate, so it never conflicts).
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	return db.Update(ctx, db.singleKey(), func(tx *Tx) error { return tx.Put(key, value) })
}

// Delete removes one key in its own transaction.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	return db.Update(ctx, db.singleKey(), func(tx *Tx) error { return tx.Delete(key) })
}

// CompareAndSwap sets key to new if its current value equals old (old nil:
// the key must be absent — Cassandra's IF NOT EXISTS) and reports whether it
// swapped. new nil deletes the key.
func (db *DB) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	swapped := false
	err := db.Update(ctx, db.singleKey(), func(tx *Tx) error {
		var err error
		swapped, err = SwapIn(tx, func(k []byte) ([]byte, error) { return readForRMW(tx, k) }, key, old, new)
		return err
	})
	return swapped && err == nil, err
}

// Increment adds delta to the counter at key and returns the new value. A
// counter is an 8-byte big-endian two's-complement int64; an absent key
// counts as 0. Any other value gives ErrNotCounter; overflow is an error.
func (db *DB) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	var n int64
	err := db.Update(ctx, db.singleKey(), func(tx *Tx) error {
		var err error
		n, err = IncrementIn(tx, func(k []byte) ([]byte, error) { return readForRMW(tx, k) }, key, delta)
		return err
	})
	return n, err
}

// KeyWriter is what the one-key steps below write through: a transaction
// of this engine, or of another behind the same API (etcdkv).
type KeyWriter interface {
	Put(key, value []byte) error
	Delete(key []byte) error
}

// SwapIn is one attempt of CompareAndSwap inside a transaction, which reads
// key with read (under a lock, or from the snapshot) and writes through w.
// It reports whether it swapped.
func SwapIn(w KeyWriter, read func(key []byte) ([]byte, error), key, old, new []byte) (bool, error) {
	cur, err := read(key)
	switch {
	case errors.Is(err, ErrNotFound):
		if old != nil {
			return false, nil
		}
	case err != nil:
		return false, err
	case old == nil || !bytes.Equal(cur, old):
		return false, nil
	}
	if new == nil {
		return true, w.Delete(key)
	}
	return true, w.Put(key, new)
}

// IncrementIn is one attempt of Increment inside a transaction (read and w
// as for SwapIn); it returns the new value.
func IncrementIn(w KeyWriter, read func(key []byte) ([]byte, error), key []byte, delta int64) (int64, error) {
	cur, err := read(key)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return 0, err
	}
	old, err := DecodeCounter(cur)
	if err != nil {
		return 0, err
	}
	if (delta > 0 && old > math.MaxInt64-delta) || (delta < 0 && old < math.MinInt64-delta) {
		return 0, fmt.Errorf("txkv: Increment of %q overflows int64 (%d%+d)", key, old, delta)
	}
	return old + delta, w.Put(key, EncodeCounter(old+delta))
}

// EncodeCounter is the counter format of Increment.
func EncodeCounter(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }

// DecodeCounter reads a counter; nil (absent) is 0.
func DecodeCounter(b []byte) (int64, error) {
	switch len(b) {
	case 0:
		if b == nil {
			return 0, nil
		}
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("%w: %d bytes", ErrNotCounter, len(b))
}
