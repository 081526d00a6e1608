package txn

import (
	"errors"
	"fmt"

	"github.com/txkv/txkv/lockmgr"
)

// Sentinel errors returned first by the transaction engine. Errors of the
// lower layers (lockmgr: ErrDeadlock, ErrLockTimeout, ErrLockNotAvailable;
// wal: ErrClosed, ErrCorrupt, ErrLogFailed, ErrCompacted) are returned as those
// packages define them; the root package re-exports all of them.
var (
	ErrNotFound        = errors.New("txkv: key not found")
	ErrConflict        = errors.New("txkv: transaction conflict")
	ErrVersionMismatch = errors.New("txkv: version mismatch")
	ErrTxDone          = errors.New("txkv: transaction has already been committed or rolled back")
	ErrReadOnly        = errors.New("txkv: read-only transaction")
	ErrInvalidKey      = errors.New("txkv: invalid key")
	ErrValueTooLarge   = errors.New("txkv: value too large")
	ErrTxManaged       = errors.New("txkv: Commit and Rollback are not allowed inside Update or View")
	ErrInvalidOption   = errors.New("txkv: invalid option")
	ErrNotCounter      = errors.New("txkv: value is not an 8-byte counter")
)

// readOnlyWrite and readOnlyLock say what a read-only transaction refused:
// a write is not a lock, and a user who asked for one should read which.
func readOnlyWrite(op string) error { return fmt.Errorf("%w: %s writes", ErrReadOnly, op) }

func readOnlyLock(op string) error {
	return fmt.Errorf("%w: %s takes a lock (take locks in a transaction begun without ReadOnly)", ErrReadOnly, op)
}

// Conflict reasons carried by ConflictError.
const (
	ReasonReadChanged    = "read-changed"    // a key read has a newer committed version
	ReasonReadLocked     = "read-locked"     // a key read is exclusively locked by a committing transaction
	ReasonRangeChanged   = "range-changed"   // a scanned range gained or lost a key (phantom)
	ReasonRangeLocked    = "range-locked"    // a scanned range holds a key exclusively locked by another transaction
	ReasonWriteChanged   = "write-changed"   // a written key changed after the snapshot (first committer wins)
	ReasonUpdateConflict = "update-conflict" // a locked key changed after the snapshot (first updater wins)
)

// ConflictError is the detail of ErrConflict: which transaction failed
// validation, on which key or range, and why.
type ConflictError struct {
	TxID   uint64
	Key    []byte
	End    []byte // for range reasons: the end of the scanned range (nil = open)
	Range  bool
	Reason string

	// lostTo is the commit timestamp the transaction lost to (0: unknown).
	// Update's retry starts from a snapshot that includes it.
	lostTo uint64
}

func (e *ConflictError) Error() string {
	if e.Range {
		return fmt.Sprintf("txkv: transaction conflict: tx %d: range [%q, %s): %s",
			e.TxID, e.Key, endString(e.End), e.Reason)
	}
	return fmt.Sprintf("txkv: transaction conflict: tx %d: key %q: %s", e.TxID, e.Key, e.Reason)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func endString(end []byte) string {
	if end == nil {
		return "∞"
	}
	return fmt.Sprintf("%q", end)
}

// IsRetryable reports whether err is worth retrying the whole transaction:
// an optimistic conflict or a deadlock victim.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, lockmgr.ErrDeadlock)
}

// VersionMismatchError is the detail of ErrVersionMismatch.
type VersionMismatchError struct {
	Key              []byte
	Expected, Actual uint64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("txkv: version mismatch: key %q is at version %d, expected %d", e.Key, e.Actual, e.Expected)
}

// Is makes errors.Is(err, ErrVersionMismatch) true.
func (e *VersionMismatchError) Is(target error) bool { return target == ErrVersionMismatch }
