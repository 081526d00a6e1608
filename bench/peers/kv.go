package peers

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Store is the little every peer offers: serializable read-write
// transactions over byte keys, run to completion (each adapter retries its
// own conflicts, as an application would), and read-only ones.
type Store interface {
	Update(fn func(tx Tx) error) error
	View(fn func(tx Tx) error) error
	Close() error
}

// Tx is one transaction of a Store.
type Tx interface {
	// Get returns the value of k, or found false.
	Get(k []byte) (v []byte, found bool, err error)
	Put(k, v []byte) error
	Delete(k []byte) error
	// Claim returns the first key with prefix that no other transaction
	// is claiming, or found false: txkv uses ScanForUpdate + SkipLocked;
	// the others take the first key, their writers being serialized (or,
	// for Badger, conflicting at commit and retrying).
	Claim(prefix []byte) (k, v []byte, found bool, err error)
	// Scan calls fn for each key with prefix, in key order; the slices
	// are valid only during the call.
	Scan(prefix []byte, fn func(k, v []byte) error) error
}

// errRefused rolls a transaction back when the business rule says no.
var errRefused = errors.New("txkv: peers: refused by the business rule")

func enc(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func dec(b []byte) int64 {
	if len(b) != 8 {
		return -1 << 62 // fails every invariant loudly
	}
	return int64(binary.BigEndian.Uint64(b))
}

func key(format string, args ...any) []byte { return fmt.Appendf(nil, format, args...) }

func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++ // prefixes here end in '/', never 0xff
	return end
}

func getInt(tx Tx, k []byte) (int64, error) {
	v, ok, err := tx.Get(k)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("txkv: peers: %s missing", k)
	}
	return dec(v), nil
}

func count(tx Tx, prefix []byte) (int, error) {
	n := 0
	err := tx.Scan(prefix, func(_, _ []byte) error { n++; return nil })
	return n, err
}
