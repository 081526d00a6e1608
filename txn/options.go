package txn

import (
	"fmt"

	"log/slog"
	"math"
	"time"

	"github.com/txkv/txkv/deadlock"
	"github.com/txkv/txkv/lockmgr"
)

// Strategy is how a transaction controls concurrency (architecture §3).
type Strategy int

const (
	// StrategyDefault, the zero value, means "the database's default strategy".
	StrategyDefault Strategy = iota
	// Pessimistic is strict two-phase locking: reads take shared locks, writes
	// exclusive locks, all held until the commit is durable.
	Pessimistic
	// Optimistic reads from a snapshot without locks, buffers writes and
	// validates the reads at commit (Kung & Robinson; Silo).
	Optimistic
	// Hybrid tries optimistically first and retries a conflicted transaction
	// pessimistically, locking up front the keys the failed attempt touched.
	Hybrid
	// Adaptive is optimistic but locks keys that recently caused conflicts
	// (MOCC, Wang & Kimura, VLDB 2016).
	Adaptive
)

var strategyNames = [...]string{"default", "pessimistic", "optimistic", "hybrid", "adaptive"}

func (s Strategy) String() string {
	if s < 0 || int(s) >= len(strategyNames) {
		return fmt.Sprintf("Strategy(%d)", int(s))
	}
	return strategyNames[s]
}

// Isolation is the isolation level of a transaction.
type Isolation int

const (
	// IsolationDefault, the zero value, means "the database's default".
	IsolationDefault Isolation = iota
	// Serializable: every committed history is equivalent to a serial one.
	Serializable
	// Snapshot: reads see a snapshot; only write-write conflicts abort
	// (first committer or first updater wins). Write skew is possible.
	Snapshot
)

var isolationNames = [...]string{"default", "serializable", "snapshot"}

func (i Isolation) String() string {
	if i < 0 || int(i) >= len(isolationNames) {
		return fmt.Sprintf("Isolation(%d)", int(i))
	}
	return isolationNames[i]
}

// RetryPolicy says how Update retries retryable errors: exponential backoff
// with full jitter (sleep a uniform random time in [0, min(MaxDelay,
// BaseDelay·2^attempt)]), as in the AWS architecture blog's "Exponential
// Backoff And Jitter".
type RetryPolicy struct {
	MaxAttempts int           // total attempts including the first; 0 = default (10)
	BaseDelay   time.Duration // 0 = default (50µs)
	MaxDelay    time.Duration // 0 = default (10ms)
	// EscalateAfter is how many failed attempts run as planned before each
	// retry first locks what the failed attempt needed (see DB.Update);
	// 0 = the default for the database — EscalateAfterDurable (2) on a
	// file, EscalateAfterInMemory (8) in memory — and EscalateNever never.
	EscalateAfter int
}

// Escalation defaults and the value that turns it off (RetryPolicy).
//
// Why two defaults: escalation trades retries for lock waits. On a file,
// transactions start in waves — every committer of a batch is released
// when its fsync ends — so their conflicts repeat, and a retry that queues
// for its keys at the third attempt is what keeps a hot counter's Updates
// from failing. In memory an attempt costs microseconds, less than the park
// and wake-up that an escalated transaction's locks force on the others
// — and each escalated attempt, holding its locks and its seniority for a
// whole attempt, makes more deadlocks among the others: on the in-memory
// contention sweep at hot=10, escalating after 6 failures cost Pessimistic
// ~40% of its rate and doubled its deadlocks per commit, after 8 it is
// within noise of never escalating. So in memory it is kept for the last
// attempts of the default policy (10), for transactions that keep losing.
const (
	EscalateAfterDurable  = 2
	EscalateAfterInMemory = 8
	EscalateNever         = -1
)

// DefaultRetryPolicy is the policy used when none is given.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 10, BaseDelay: 50 * time.Microsecond, MaxDelay: 10 * time.Millisecond}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultRetryPolicy.MaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = DefaultRetryPolicy.BaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = DefaultRetryPolicy.MaxDelay
	}
	return p
}

func (p RetryPolicy) validate() error {
	if p.MaxAttempts < 0 || p.BaseDelay < 0 || p.MaxDelay < 0 || p.EscalateAfter < EscalateNever {
		return fmt.Errorf("%w: retry policy fields must not be negative (EscalateAfter: EscalateNever): %+v", ErrInvalidOption, p)
	}
	return nil
}

// Defaults of Options (architecture §2).
const (
	DefaultLockTimeout       = 5 * time.Second
	DefaultDeadlockInterval  = time.Second
	DefaultAdaptiveThreshold = 4
	AdaptiveNever            = math.MaxInt // Options.AdaptiveThreshold that never locks: pure OCC
	AdaptiveAlways           = -1          // Options.AdaptiveThreshold that locks every read: pure 2PL
	DefaultMaxKeySize        = 32 << 10
	DefaultMaxValueSize      = 16 << 20
	DefaultCheckpointBytes   = 64 << 20
	DefaultMemtableBytes     = 256 << 20
)

// Forever is the wait bound without a bound, for Options.LockTimeout,
// TxOptions.LockTimeout and WaitTimeout. Every wait bound in txkv follows
// one convention (lockmgr.Forever): > 0 waits at most that long, 0 does not
// wait, Forever waits without a timer — except that a zero field of an
// options struct means its default.
const Forever = lockmgr.Forever

// Options configure a DB (the root package re-exports it as txkv.Options).
// A nil *Options means the defaults; Open copies and validates the options
// and fills every zero field with its default, so the zero Options is the
// default configuration. This struct is the one place an option is
// declared: its default and its check live in EnsureDefaults and Validate
// below, and Open hands the lock manager and the log what they need (db.go).
type Options struct {
	Strategy          Strategy      // default Optimistic
	Isolation         Isolation     // default Serializable
	LockTimeout       time.Duration // default 5s; Forever: no bound
	DeadlockDetection DeadlockMode  // default DeadlockImmediate
	DeadlockInterval  time.Duration // DeadlockPeriodic's sweep interval; default 1s
	DeadlockVictim    VictimPolicy  // which member of a cycle is aborted; default VictimYoungest
	// AdaptiveThreshold is the key temperature at which Adaptive locks at
	// read time; default 4. AdaptiveAlways locks every read (pure 2PL),
	// AdaptiveNever none (pure OCC).
	AdaptiveThreshold int
	Sync              SyncMode     // default SyncAlways
	Retry             *RetryPolicy // Update's default; nil: 10 attempts, 50µs..10ms full jitter
	CheckpointBytes   int64        // checkpoint when the log exceeds this; default 64 MiB
	MemtableBytes     int64        // checkpoint when the memtable exceeds this; default 256 MiB
	MaxKeySize        int          // default and maximum 32 KiB (bbolt's key limit)
	MaxValueSize      int          // default 16 MiB
	Logger            *slog.Logger // default: discard

	// Watch keeps recent commits for change streams. WatchRingEvents and
	// WatchRingBytes bound the in-memory ring of recent commits (default
	// 8192 events, 32 MiB of keys and values): the whole history an
	// in-memory DB can replay, and a file DB's cache in front of its log.
	// WatchRetainRecords and WatchRetainBytes keep that much of a file DB's
	// log behind each checkpoint, so watchers can resume from older
	// versions, also after a restart (default 10,000 records, no byte
	// minimum; WatchRetainRecords < 0 keeps none). Older versions give
	// ErrCompacted.
	WatchRingEvents    int
	WatchRingBytes     int64
	WatchRetainRecords int
	WatchRetainBytes   int64

	// BeforeLogCommit, if set, runs inside every log batch's bbolt
	// transaction just before it commits; an error fails the batch as a
	// failed fsync would. A fault-injection seam for tests.
	BeforeLogCommit func() error
}

// DefaultOptions returns the defaults, every field filled in, ready to
// modify.
func DefaultOptions() *Options {
	o := &Options{}
	o.EnsureDefaults()
	return o
}

// EnsureDefaults fills zero fields with their defaults.
func (c *Options) EnsureDefaults() {
	if c.Strategy == StrategyDefault {
		c.Strategy = Optimistic
	}
	if c.Isolation == IsolationDefault {
		c.Isolation = Serializable
	}
	if c.LockTimeout == 0 {
		c.LockTimeout = DefaultLockTimeout
	}
	if c.AdaptiveThreshold == 0 {
		c.AdaptiveThreshold = DefaultAdaptiveThreshold
	}
	if c.DeadlockInterval == 0 {
		c.DeadlockInterval = DefaultDeadlockInterval
	}
	var r RetryPolicy // a copy: the caller's policy is never modified
	if c.Retry != nil {
		r = *c.Retry
	}
	r = r.withDefaults()
	c.Retry = &r
	c.ensureSizeDefaults()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

func (c *Options) ensureSizeDefaults() {
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = DefaultCheckpointBytes
	}
	if c.MemtableBytes == 0 {
		c.MemtableBytes = DefaultMemtableBytes
	}
	if c.MaxKeySize == 0 {
		c.MaxKeySize = DefaultMaxKeySize
	}
	if c.MaxValueSize == 0 {
		c.MaxValueSize = DefaultMaxValueSize
	}
	if c.WatchRingEvents == 0 {
		c.WatchRingEvents = DefaultWatchRingEvents
	}
	if c.WatchRingBytes == 0 {
		c.WatchRingBytes = DefaultWatchRingBytes
	}
	if c.WatchRetainRecords == 0 {
		c.WatchRetainRecords = DefaultWatchRetainRecords
	}
}

// Validate reports the first invalid field.
func (c *Options) Validate() error {
	switch {
	case !c.Strategy.valid():
		return fmt.Errorf("%w: unknown strategy %v", ErrInvalidOption, c.Strategy)
	case c.Isolation < Serializable || c.Isolation > Snapshot:
		return fmt.Errorf("%w: unknown isolation %v", ErrInvalidOption, c.Isolation)
	case c.AdaptiveThreshold < AdaptiveAlways:
		return fmt.Errorf("%w: AdaptiveThreshold %d is below AdaptiveAlways (-1); use a positive temperature, AdaptiveAlways or AdaptiveNever", ErrInvalidOption, c.AdaptiveThreshold)
	case !c.DeadlockVictim.Valid():
		return fmt.Errorf("%w: unknown deadlock victim policy %v", ErrInvalidOption, c.DeadlockVictim)
	case !c.DeadlockDetection.Valid():
		return fmt.Errorf("%w: unknown deadlock detection mode %v", ErrInvalidOption, c.DeadlockDetection)
	case c.Sync != SyncAlways && c.Sync != SyncNone:
		return fmt.Errorf("%w: unknown sync mode %v", ErrInvalidOption, c.Sync)
	case c.DeadlockInterval < 0:
		return fmt.Errorf("%w: DeadlockInterval must not be negative", ErrInvalidOption)
	case c.DeadlockDetection == deadlock.Periodic && c.LockTimeout > 0 && c.LockTimeout <= c.DeadlockInterval:
		// The sweep would find every deadlock only after its waits had
		// timed out: a deadlock (retried by Update) would become a lock
		// timeout (not retried).
		return fmt.Errorf("%w: LockTimeout %v is not above DeadlockInterval %v: with DeadlockPeriodic every deadlock would end as a lock timeout before the sweep finds it",
			ErrInvalidOption, c.LockTimeout, c.DeadlockInterval)
	case c.CheckpointBytes < 0 || c.MemtableBytes < 0:
		return fmt.Errorf("%w: CheckpointBytes and MemtableBytes must not be negative", ErrInvalidOption)
	case c.MaxKeySize < 0 || c.MaxKeySize > DefaultMaxKeySize:
		return fmt.Errorf("%w: MaxKeySize must be in [1, %d] (bbolt's key limit)", ErrInvalidOption, DefaultMaxKeySize)
	case c.MaxValueSize < 0:
		return fmt.Errorf("%w: MaxValueSize must not be negative", ErrInvalidOption)
	case c.WatchRingEvents < 0 || c.WatchRingBytes < 0 || c.WatchRetainBytes < 0:
		return fmt.Errorf("%w: WatchRingEvents, WatchRingBytes and WatchRetainBytes must not be negative", ErrInvalidOption)
	}
	return c.Retry.validate()
}

// TxOptions are per-transaction options; zero fields inherit the DB's.
type TxOptions struct {
	Strategy    Strategy
	Isolation   Isolation
	ReadOnly    bool
	LockTimeout time.Duration // 0 = the DB default; Forever = no bound
	Retry       *RetryPolicy  // Update only; nil = the DB default
	Label       string        // shown in Locks(), deadlock reports and Stats
}
