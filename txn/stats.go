package txn

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/wal"
)

// abortReason says why a transaction ended without committing: the
// breakdown the guide's monitors ask for.
type abortReason uint8

const (
	reasonRollback  abortReason = iota // the caller rolled back (or fn returned an error)
	reasonConflict                     // optimistic validation failed
	reasonDeadlock                     // chosen as a deadlock victim
	reasonTimeout                      // a lock wait timed out, then the caller gave up
	reasonNoWait                       // NOWAIT / SKIP LOCKED refused, then the caller gave up
	reasonCancelled                    // context cancelled or DB closed
	reasonLogFailed                    // the log write failed
	numReasons
)

var reasonNames = [numReasons]string{"rollback", "conflict", "deadlock", "timeout", "nowait", "cancelled", "log-failed"}

func (r abortReason) String() string { return reasonNames[r] }

// classify maps an error that ended a transaction to its reason.
func classify(err error) abortReason {
	switch {
	case errors.Is(err, ErrConflict):
		return reasonConflict
	case errors.Is(err, lockmgr.ErrDeadlock):
		return reasonDeadlock
	case errors.Is(err, lockmgr.ErrLockTimeout):
		return reasonTimeout
	case errors.Is(err, lockmgr.ErrLockNotAvailable):
		return reasonNoWait
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, wal.ErrClosed):
		return reasonCancelled
	case errors.Is(err, wal.ErrLogFailed):
		return reasonLogFailed
	}
	return reasonRollback
}

// counters are the engine's contention statistics: plain atomics updated
// once per transaction (per-operation counts are summed in the Tx first), so
// counting costs a few nanoseconds on the commit path. The counters every
// transaction touches are sharded by transaction ID, so that transactions
// ending on different cores do not fight over one cache line; Stats sums the
// shards.
type counters struct {
	conflicts, deadlocks                atomic.Uint64
	lockTimeouts, notAvailable, retries atomic.Uint64
	versionMismatches                   atomic.Uint64
	checkpoints                         atomic.Uint64
	durabilityWaits                     atomic.Uint64
	perTx                               [statShards]txCounters
}

const statShards = 8

// timed says whether a transaction's duration is measured for MeanTxTime: the
// first timedEvery transactions of a DB, then one in timedEvery, by ID.
// Reading the clock twice costs as much as the rest of a point read's
// bookkeeping (it is not a vDSO call on every VM), and a systematic sample of
// durations estimates their mean just as well; the first ones are all timed
// so that a DB that ran one Put does not report a MeanTxTime of 0.
func timed(id uint64) bool { return id%timedEvery == 0 || id <= timedEvery }

const timedEvery = 16

// txCounters are one shard of the per-transaction counters.
type txCounters struct {
	byStrategy       [numStrategies]strategyCounters
	byReason         [numReasons]atomic.Uint64
	reads, writes    atomic.Uint64
	txNanos, txCount atomic.Uint64
	_                [64]byte // keep shards on separate cache lines
}

type strategyCounters struct{ commits, aborts, conflicts atomic.Uint64 }

// sum adds up the shards into one txCounters-shaped set of plain numbers.
func (c *counters) sum() (t txTotals) {
	for i := range c.perTx {
		sh := &c.perTx[i]
		for st := range sh.byStrategy {
			t.byStrategy[st].Commits += sh.byStrategy[st].commits.Load()
			t.byStrategy[st].Aborts += sh.byStrategy[st].aborts.Load()
			t.byStrategy[st].Conflicts += sh.byStrategy[st].conflicts.Load()
		}
		for r := range sh.byReason {
			t.byReason[r] += sh.byReason[r].Load()
		}
		t.reads += sh.reads.Load()
		t.writes += sh.writes.Load()
		t.txNanos += sh.txNanos.Load()
		t.txCount += sh.txCount.Load()
	}
	for _, st := range t.byStrategy {
		t.commits += st.Commits
		t.aborts += st.Aborts
	}
	return t
}

// txTotals are the per-transaction counters summed over the shards.
type txTotals struct {
	commits, aborts  uint64
	byStrategy       [numStrategies]StrategyStats
	byReason         [numReasons]uint64
	reads, writes    uint64
	txNanos, txCount uint64
}

// StrategyStats are the commit and abort counts of one strategy.
type StrategyStats struct {
	Commits, Aborts uint64
	// Conflicts counts the aborts that were conflicts or deadlock victims
	// (the strategy's share of Stats.ConflictRate's events).
	Conflicts uint64
}

// HistogramBucket is one bucket of a latency histogram: Count waits took at
// most UpperBound (and more than the previous bucket's bound).
type HistogramBucket struct {
	UpperBound time.Duration // the last bucket's bound is the largest Duration
	Count      uint64
}

// String renders the bucket as "≤1ms: 12", and the last, unbounded one as
// "more: 3".
func (b HistogramBucket) String() string {
	if b.UpperBound == time.Duration(1<<63-1) {
		return fmt.Sprintf("more: %d", b.Count)
	}
	return fmt.Sprintf("≤%v: %d", b.UpperBound, b.Count)
}

// Stats is a snapshot of the database's counters, like sql.DB.Stats: the
// monitors of the concurrency-control guide (optimistic conflicts, lock
// waits, deadlocks, version mismatches) as numbers.
type Stats struct {
	Commits      uint64 // transactions committed (including read-only ones)
	Aborts       uint64 // transactions rolled back, for any reason
	Conflicts    uint64 // validation failures (ErrConflict)
	Deadlocks    uint64 // deadlock victims
	LockTimeouts uint64 // lock waits that timed out
	LockWaits    uint64 // lock requests that had to wait
	Retries      uint64 // Update attempts after the first
	NotAvailable uint64 // NOWAIT / SKIP LOCKED requests refused

	VersionMismatches uint64 // PutIfVersion refusals (the guide's VersionMismatchMonitor)

	AbortsByReason map[string]uint64        // rollback, conflict, deadlock, timeout, nowait, cancelled, log-failed
	ByStrategy     map[string]StrategyStats // by the strategy asked for

	// ConflictRate is the share of read-write attempts of the last 10 s that
	// ended in a conflict or as a deadlock victim (Adaptive steers by it).
	ConflictRate float64
	// HybridFailRate is Hybrid's slow average of failed optimistic first
	// attempts; over 10%, HybridStartsPessimistic is set and new Hybrid
	// Updates start pessimistic (with optimistic probe bursts now and then).
	HybridFailRate          float64
	HybridStartsPessimistic bool
	// AdaptiveMode is how Adaptive transactions run now: "mocc" (hot keys
	// locked at read time), "optimistic" or "pessimistic" — the steering's
	// current choice, or the fixed end AdaptiveAlways or AdaptiveNever
	// selects.
	AdaptiveMode   string
	Reads, Writes  uint64  // key reads and writes made inside transactions
	ReadWriteRatio float64 // Reads / Writes (0 with no writes)
	MeanTxTime     time.Duration

	LockWaitTime      time.Duration // total time spent waiting for locks
	LockWaitHistogram []HistogramBucket

	WALBatches    uint64  // group-commit batches written
	WALRecords    uint64  // commit records written
	MeanBatchSize float64 // records per batch
	// WALQueued is the number of commit records enqueued and waiting for the
	// next batch: installed and visible, not yet durable (their committers
	// wait). The batch being written is not counted.
	WALQueued     int
	Fsyncs        uint64
	Checkpoints   uint64
	MemtableBytes int64
	ReadTS        uint64 // the read watermark: commits at or below it are visible
	DurableTS     uint64 // the durable watermark: commits at or below it are also durable
	// DurabilityWaits counts readers (View, DB.Get, read-only commits, …) that saw a
	// version above DurableTS and waited for it before returning.
	DurabilityWaits uint64
}

// noteEnd counts a finished transaction, and feeds the conflict window.
func (db *DB) noteEnd(tx *Tx, committed bool) {
	if db.statsOff {
		return
	}
	c := &db.stats.perTx[tx.id%statShards]
	sc := &c.byStrategy[tx.requested]
	if committed {
		sc.commits.Add(1)
	} else {
		sc.aborts.Add(1)
		if tx.reason == reasonConflict || tx.reason == reasonDeadlock {
			sc.conflicts.Add(1)
		}
		c.byReason[tx.reason].Add(1)
	}
	if tx.nReads > 0 {
		c.reads.Add(uint64(tx.nReads))
	}
	if tx.nWrites > 0 {
		c.writes.Add(uint64(tx.nWrites))
	}
	if timed(tx.id) {
		c.txNanos.Add(uint64(db.sinceOpen() - tx.start))
		c.txCount.Add(1)
	}
	if !tx.readOnly && (committed || tx.nWrites > 0 || tx.reason != reasonRollback) {
		db.window.Note(tx.id, !committed && (tx.reason == reasonConflict || tx.reason == reasonDeadlock))
	}
}

func (c *counters) noteLockError(err error) {
	switch {
	case errors.Is(err, lockmgr.ErrLockTimeout):
		c.lockTimeouts.Add(1)
	case errors.Is(err, lockmgr.ErrLockNotAvailable):
		c.notAvailable.Add(1)
	}
}

// Stats returns the current counters.
func (db *DB) Stats() Stats {
	c := &db.stats
	t := c.sum()
	s := Stats{
		Commits: t.commits, Aborts: t.aborts, Conflicts: c.conflicts.Load(),
		Deadlocks: c.deadlocks.Load(), LockTimeouts: c.lockTimeouts.Load(),
		Retries: c.retries.Load(), NotAvailable: c.notAvailable.Load(),
		VersionMismatches: c.versionMismatches.Load(), DurabilityWaits: c.durabilityWaits.Load(),
		Reads: t.reads, Writes: t.writes, ConflictRate: db.window.Rate(),
		Checkpoints: c.checkpoints.Load(), MemtableBytes: db.store.MemBytes(),
		ReadTS: db.store.ReadTS(), DurableTS: db.store.DurableTS(), ByStrategy: make(map[string]StrategyStats),
		AbortsByReason: make(map[string]uint64, numReasons),
	}
	if s.Writes > 0 {
		s.ReadWriteRatio = float64(s.Reads) / float64(s.Writes)
	}
	if t.txCount > 0 {
		s.MeanTxTime = time.Duration(t.txNanos / t.txCount)
	}
	for st := Pessimistic; st <= Adaptive; st++ {
		s.ByStrategy[st.String()] = t.byStrategy[st]
	}
	for r := range numReasons {
		s.AbortsByReason[r.String()] = t.byReason[r]
	}
	db.addLockStats(&s)
	db.addLogStats(&s)
	db.addSteeringStats(&s)
	return s
}

// adaptiveModeNames are Stats.AdaptiveMode's words for the runModes.
var adaptiveModeNames = [...]string{runLocking: "pessimistic", runOptimistic: "optimistic", runHotLocking: "mocc"}

// addSteeringStats reports the state of Hybrid's memory and Adaptive's
// steering (package steer).
func (db *DB) addSteeringStats(s *Stats) {
	h := &db.steering.hybrid
	s.HybridFailRate = h.FailRate()
	s.HybridStartsPessimistic = h.StartsPessimistic()
	s.AdaptiveMode = adaptiveModeNames[adaptiveStart(db)]
}

func (db *DB) addLockStats(s *Stats) {
	lm := db.locks.Stats()
	s.LockWaits, s.LockWaitTime = lm.Waits, lm.WaitTime
	s.LockWaitHistogram = make([]HistogramBucket, len(lm.WaitHistogram))
	for i, n := range lm.WaitHistogram {
		bound := time.Duration(1<<63 - 1)
		if i < len(lockmgr.WaitBuckets) {
			bound = lockmgr.WaitBuckets[i]
		}
		s.LockWaitHistogram[i] = HistogramBucket{UpperBound: bound, Count: n}
	}
}

func (db *DB) addLogStats(s *Stats) {
	if db.log == nil {
		return
	}
	ls := db.log.Stats()
	s.WALBatches, s.WALRecords, s.Fsyncs = ls.Batches, ls.Records, ls.Fsyncs
	s.MeanBatchSize = ls.MeanBatch()
	s.WALQueued = ls.Queued
}
