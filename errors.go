package txkv

import (
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/txn"
	"github.com/txkv/txkv/wal"
)

// Every error txkv returns, re-exported from the package that defines it so
// errors.Is works whichever layer produced it (as bbolt re-exports its
// errors/ package). Messages start with "txkv: ".
var (
	ErrNotFound         = txn.ErrNotFound             // Get of an absent key
	ErrConflict         = txn.ErrConflict             // optimistic validation failed; see *ConflictError
	ErrVersionMismatch  = txn.ErrVersionMismatch      // PutIfVersion: the version changed; see *VersionMismatchError
	ErrTxDone           = txn.ErrTxDone               // use after Commit or Rollback
	ErrReadOnly         = txn.ErrReadOnly             // a write or lock in a read-only transaction
	ErrInvalidKey       = txn.ErrInvalidKey           // nil, empty or over MaxKeySize
	ErrValueTooLarge    = txn.ErrValueTooLarge        // over MaxValueSize
	ErrTxManaged        = txn.ErrTxManaged            // Commit or Rollback inside Update or View
	ErrInvalidOption    = txn.ErrInvalidOption        // Open or Begin with invalid options
	ErrNotCounter       = txn.ErrNotCounter           // Increment of a key that is not an 8-byte counter
	ErrDeadlock         = lockmgr.ErrDeadlock         // this transaction was a deadlock victim; see *DeadlockError
	ErrLockTimeout      = lockmgr.ErrLockTimeout      // a lock wait outlasted the lock timeout; see *LockError
	ErrLockNotAvailable = lockmgr.ErrLockNotAvailable // NOWAIT (or SKIP LOCKED on one key) found the lock taken; see *LockError
	ErrClosed           = wal.ErrClosed               // the DB is closed
	ErrCorrupt          = wal.ErrCorrupt              // the file is damaged; *wal.CorruptError names file and record
	ErrLogFailed        = wal.ErrLogFailed            // a log write or fsync failed; the DB refuses writes
	ErrCompacted        = wal.ErrCompacted            // Watch from a version no longer in the log
	ErrInUse            = wal.ErrInUse                // Open of a file another open DB holds (in this process: at once)
	ErrInvalidRecord    = wal.ErrInvalidRecord        // a transaction whose log record bbolt cannot store (over its value limit)
	// ErrSnapshotTooOld reports a broken internal invariant: a checkpoint
	// overtook a snapshot still reading. It is not retryable; report it as a
	// bug. (Damage to a stored version is ErrCorrupt, caught by its checksum.)
	ErrSnapshotTooOld = mvcc.ErrSnapshotTooOld
)

type (
	// ConflictError names the key or range and the reason of a failed validation.
	ConflictError = txn.ConflictError
	// VersionMismatchError gives the expected and actual version of PutIfVersion.
	VersionMismatchError = txn.VersionMismatchError
	// DeadlockError names the victim and the cycle of waits it broke.
	DeadlockError = lockmgr.DeadlockError
	// LockError names the key or range, the mode and the transactions in the
	// way of a NOWAIT refusal or a lock timeout.
	LockError = lockmgr.LockError
	// CorruptError names the damaged file, bucket and record.
	CorruptError = wal.CorruptError
)

// IsRetryable reports whether the whole transaction is worth retrying: a
// conflict (ErrConflict) or a deadlock victim (ErrDeadlock). Update retries
// these itself.
func IsRetryable(err error) bool { return txn.IsRetryable(err) }
