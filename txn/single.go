package txn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// singleKey are the options of the one-key helpers: a pessimistic
// transaction, so the read-modify-write of CompareAndSwap and Increment is
// one exclusive lock held across read and write — linearizable, never
// aborted by a conflict, and queued FIFO under contention.
var singleKey = &TxOptions{Strategy: Pessimistic, Isolation: Serializable, Label: "single-key"}

// Put writes one key in its own transaction (a blind write: nothing to
// validate, so it never conflicts).
func (db *DB) Put(ctx context.Context, key, value []byte) error {
	return db.Update(ctx, singleKey, func(tx *Tx) error { return tx.Put(key, value) })
}

// Delete removes one key in its own transaction.
func (db *DB) Delete(ctx context.Context, key []byte) error {
	return db.Update(ctx, singleKey, func(tx *Tx) error { return tx.Delete(key) })
}

// CompareAndSwap sets key to new if its current value equals old (old nil:
// the key must be absent — Cassandra's IF NOT EXISTS) and reports whether it
// swapped. new nil deletes the key.
func (db *DB) CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error) {
	swapped := false
	err := db.Update(ctx, singleKey, func(tx *Tx) error {
		swapped = false
		cur, err := tx.GetForUpdate(key)
		switch {
		case errors.Is(err, ErrNotFound):
			if old != nil {
				return nil
			}
		case err != nil:
			return err
		case old == nil || !bytes.Equal(cur, old):
			return nil
		}
		swapped = true
		if new == nil {
			return tx.Delete(key)
		}
		return tx.Put(key, new)
	})
	return swapped && err == nil, err
}

// Increment adds delta to the counter at key and returns the new value. A
// counter is an 8-byte big-endian two's-complement int64; an absent key
// counts as 0. Any other value gives ErrNotCounter; overflow is an error.
func (db *DB) Increment(ctx context.Context, key []byte, delta int64) (int64, error) {
	var n int64
	err := db.Update(ctx, singleKey, func(tx *Tx) error {
		cur, err := tx.GetForUpdate(key)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		old, err := DecodeCounter(cur)
		if err != nil {
			return err
		}
		if (delta > 0 && old > math.MaxInt64-delta) || (delta < 0 && old < math.MinInt64-delta) {
			return fmt.Errorf("txkv: Increment of %q overflows int64 (%d%+d)", key, old, delta)
		}
		n = old + delta
		return tx.Put(key, EncodeCounter(n))
	})
	return n, err
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
