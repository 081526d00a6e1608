package txkv

import (
	"time"

	"github.com/txkv/txkv/deadlock"
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/txn"
	"github.com/txkv/txkv/wal"
)

// Strategy is how a transaction controls concurrency; see the package doc.
type Strategy = txn.Strategy

// The strategies. StrategyDefault (the zero value) means the DB's default.
const (
	StrategyDefault = txn.StrategyDefault
	Pessimistic     = txn.Pessimistic // strict two-phase locking
	Optimistic      = txn.Optimistic  // snapshot reads, validation at commit
	Hybrid          = txn.Hybrid      // optimistic first, pessimistic retry
	Adaptive        = txn.Adaptive    // optimistic, locking hot keys (MOCC)
)

// Isolation is a transaction's isolation level.
type Isolation = txn.Isolation

// The isolation levels. IsolationDefault (the zero value) means the DB's default.
const (
	IsolationDefault = txn.IsolationDefault
	Serializable     = txn.Serializable // the default: no anomalies
	Snapshot         = txn.Snapshot     // snapshot isolation: write skew possible
)

// LockMode is the mode of a lock: Shared or Exclusive.
type LockMode = lockmgr.Mode

// The lock modes: S/S compatible, every other pair conflicts.
const (
	Shared    = lockmgr.Shared
	Exclusive = lockmgr.Exclusive
)

// SyncMode says whether a commit waits for fsync.
type SyncMode = wal.SyncMode

// The sync modes.
const (
	SyncAlways = wal.SyncAlways // default: a commit returns once its batch is fsynced
	SyncNone   = wal.SyncNone   // survive a process crash, not an OS crash
)

// DeadlockMode says when the wait-for graph is searched for cycles.
type DeadlockMode = deadlock.Mode

// The deadlock detection modes.
const (
	DeadlockImmediate = deadlock.Immediate // search when a request must wait (InnoDB)
	DeadlockPeriodic  = deadlock.Periodic  // a background sweep every DeadlockInterval (PostgreSQL)
	DeadlockOff       = deadlock.Off       // lock timeouts only (innodb_deadlock_detect=OFF)
)

// VictimPolicy says which transaction of a deadlock cycle is aborted.
type VictimPolicy = deadlock.VictimPolicy

// The victim policies.
const (
	VictimYoungest  = deadlock.Youngest  // the largest ID: least work lost (default)
	VictimRequester = deadlock.Requester // the one whose wait closed the cycle (PostgreSQL)
)

// RetryPolicy says how Update retries: exponential backoff with full jitter.
//
// Fields (txn.RetryPolicy):
//
//	MaxAttempts int           // total attempts including the first; 0 = default (10)
//	BaseDelay   time.Duration // 0 = default (50µs)
//	MaxDelay    time.Duration // 0 = default (10ms)
//	// EscalateAfter is how many failed attempts run as planned before each
//	// retry first locks what the failed attempt needed (see DB.Update);
//	// 0 = the default for the database — EscalateAfterDurable (2) on a
//	// file, EscalateAfterInMemory (8) in memory — and EscalateNever never.
//	EscalateAfter int
type RetryPolicy = txn.RetryPolicy

// TxOptions are per-transaction options; zero fields inherit the DB's.
//
// Fields (txn.TxOptions):
//
//	Strategy    Strategy
//	Isolation   Isolation
//	ReadOnly    bool
//	LockTimeout time.Duration // 0 = the DB default; Forever = no bound
//	Retry       *RetryPolicy  // Update only; nil = the DB default
//	Label       string        // shown in Locks(), deadlock reports and Stats
type TxOptions = txn.TxOptions

// LockOption changes how an explicit lock request waits.
type LockOption = txn.LockOption

// NoWait: fail at once with ErrLockNotAvailable; never queue (SELECT … NOWAIT).
func NoWait() LockOption { return txn.NoWait() }

// SkipLocked: ScanForUpdate skips rows whose lock is not free now (SELECT … SKIP LOCKED).
func SkipLocked() LockOption { return txn.SkipLocked() }

// WaitTimeout bounds one request's wait (ErrLockTimeout): d > 0 waits at most d, 0 does not
// wait (ErrLockTimeout at once if the lock is not free now; never queued), Forever waits
// without a bound.
func WaitTimeout(d time.Duration) LockOption { return txn.WaitTimeout(d) }

// Forever is the wait bound without a bound (Options.LockTimeout, TxOptions.LockTimeout,
// WaitTimeout). One convention for every wait bound: > 0 waits at most that long, 0 does not
// wait, Forever waits without a timer — except that a zero field of Options or TxOptions
// means its default.
const Forever = txn.Forever

// The two ends of AdaptiveThreshold, MOCC's test oracle: AdaptiveNever never locks at read
// time (Adaptive is exactly Optimistic), AdaptiveAlways locks every read (exactly
// Pessimistic).
const (
	AdaptiveNever  = txn.AdaptiveNever
	AdaptiveAlways = txn.AdaptiveAlways
)

// Escalation (RetryPolicy.EscalateAfter): how many failed attempts of an Update run as
// planned before each retry first takes, in key order, the locks the failed attempt needed
// (exclusive on what it wrote or was waiting to write, shared on what it read), reads those
// keys under them, and is as old as its first attempt when a deadlock victim is chosen — so
// an Update that keeps losing on the same keys queues for them instead of losing again,
// whatever its strategy. The default is EscalateAfterDurable on a file and
// EscalateAfterInMemory in memory, where an attempt costs less than the lock waits an
// escalated transaction imposes; EscalateNever turns it off.
const (
	EscalateAfterDurable  = txn.EscalateAfterDurable
	EscalateAfterInMemory = txn.EscalateAfterInMemory
	EscalateNever         = txn.EscalateNever
)

// Options configure a DB. A nil *Options means DefaultOptions(); Open copies
// and validates the options, and fills every zero field with its default: the
// zero Options is the default configuration.
//
// Fields (txn.Options):
//
//	Strategy          Strategy      // default Optimistic
//	Isolation         Isolation     // default Serializable
//	LockTimeout       time.Duration // default 5s; Forever: no bound
//	DeadlockDetection DeadlockMode  // default DeadlockImmediate
//	DeadlockInterval  time.Duration // DeadlockPeriodic's sweep interval; default 1s
//	DeadlockVictim    VictimPolicy  // which member of a cycle is aborted; default VictimYoungest
//	// AdaptiveThreshold is the key temperature at which Adaptive locks at
//	// read time; default 4. AdaptiveAlways locks every read (pure 2PL),
//	// AdaptiveNever none (pure OCC).
//	AdaptiveThreshold int
//	Sync              SyncMode     // default SyncAlways
//	Retry             *RetryPolicy // Update's default; nil: 10 attempts, 50µs..10ms full jitter
//	CheckpointBytes   int64        // checkpoint when the log exceeds this; default 64 MiB
//	MemtableBytes     int64        // checkpoint when the memtable exceeds this; default 256 MiB
//	MaxKeySize        int          // default and maximum 32 KiB (bbolt's key limit)
//	MaxValueSize      int          // default 16 MiB
//	Logger            *slog.Logger // default: discard
//	// Watch keeps recent commits for change streams. WatchRingEvents and
//	// WatchRingBytes bound the in-memory ring of recent commits (default
//	// 8192 events, 32 MiB of keys and values): the whole history an
//	// in-memory DB can replay, and a file DB's cache in front of its log.
//	// WatchRetainRecords and WatchRetainBytes keep that much of a file DB's
//	// log behind each checkpoint, so watchers can resume from older
//	// versions, also after a restart (default 10,000 records, no byte
//	// minimum; WatchRetainRecords < 0 keeps none). Older versions give
//	// ErrCompacted.
//	WatchRingEvents    int
//	WatchRingBytes     int64
//	WatchRetainRecords int
//	WatchRetainBytes   int64
//	// BeforeLogCommit, if set, runs inside every log batch's bbolt
//	// transaction just before it commits; an error fails the batch as a
//	// failed fsync would. A fault-injection seam for tests.
//	BeforeLogCommit func() error
type Options = txn.Options

// DefaultOptions returns the defaults, every field filled in, ready to modify.
func DefaultOptions() *Options { return txn.DefaultOptions() }
