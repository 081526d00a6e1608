package txkv

import (
	"github.com/txkv/txkv/engine"
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

	// Errors of engines other than the local one (OpenEngine).
	ErrNotSupported  = engine.ErrNotSupported  // the engine does not implement this operation or option; the error names it
	ErrTxnTooLarge   = engine.ErrTxnTooLarge   // more operations than the engine's atomic request allows; the error names the limit
	ErrCommitUnknown = engine.ErrCommitUnknown // the commit was sent but its outcome was not learned before the context ended
)

type (
	// ConflictError names the key or range and the reason of a failed validation.
	//
	// Fields (txn.ConflictError):
	//
	//  TxID   uint64
	//  Key    []byte
	//  End    []byte // for range reasons: the end of the scanned range (nil = open)
	//  Range  bool
	//  Reason string
	//  // Has unexported fields.
	ConflictError = txn.ConflictError
	// VersionMismatchError gives the expected and actual version of PutIfVersion.
	//
	// Fields (txn.VersionMismatchError):
	//
	//  Key              []byte
	//  Expected, Actual uint64
	VersionMismatchError = txn.VersionMismatchError
	// DeadlockError names the victim and the cycle of waits it broke.
	//
	// Fields (lockmgr.DeadlockError):
	//
	//  Victim uint64
	//  Cycle  []WaitEdge
	//  // Labels holds the labels (SetLabel) of the cycle's transactions that
	//  // have one; nil when none do.
	//  Labels map[uint64]string
	DeadlockError = lockmgr.DeadlockError
	// LockError names the key or range, the mode and the transactions in the
	// way of a NOWAIT refusal or a lock timeout.
	//
	// Fields (lockmgr.LockError):
	//
	//  Err     error    // ErrLockNotAvailable or ErrLockTimeout
	//  Txn     uint64   // the transaction that asked
	//  Target  Target   // what it asked for (a private copy)
	//  Mode    Mode     // in which mode
	//  Holders []uint64 // conflicting holders at the time of the refusal, ascending
	//  // Queued lists conflicting requests queued ahead of it (FIFO: it would
	//  // wait for them too), ascending: on its key, those back to and including
	//  // the nearest exclusive one (which waits for any before it); every
	//  // conflicting range request ahead.
	//  Queued  []uint64
	//  Timeout time.Duration // the wait that ran out (ErrLockTimeout); 0 for a refusal
	//  // Labels holds the labels (SetLabel) of the transactions above that
	//  // have one; nil when none do.
	//  Labels map[uint64]string
	LockError = lockmgr.LockError
	// CorruptError names the damaged file, bucket and record.
	//
	// Fields (wal.CorruptError):
	//
	//  Path   string // the database file
	//  Bucket string // "log", "base", "meta", or "" for the file as a whole
	//  Key    []byte // the offending key in Bucket, if any
	//  TS     uint64 // the commit timestamp of the offending log record, if any
	//  Reason string // what check failed
	//  Err    error  // underlying cause, if any (a bbolt error, a recovered panic)
	CorruptError = wal.CorruptError
)

// IsRetryable reports whether the whole transaction is worth retrying: a
// conflict (ErrConflict) or a deadlock victim (ErrDeadlock). Update retries
// these itself.
func IsRetryable(err error) bool { return txn.IsRetryable(err) }
