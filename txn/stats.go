package txn

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv/lockmgr"
)

// counters are the engine's contention statistics: plain atomics, so
// counting costs a few nanoseconds on the commit path.
type counters struct {
	commits, aborts, conflicts, deadlocks atomic.Uint64
	lockTimeouts, notAvailable, retries   atomic.Uint64
	byStrategy                            [Adaptive + 1]strategyCounters
	txNanos, txCount                      atomic.Uint64
	checkpoints                           atomic.Uint64
}

type strategyCounters struct{ commits, aborts atomic.Uint64 }

// StrategyStats are the commit and abort counts of one strategy.
type StrategyStats struct{ Commits, Aborts uint64 }

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

	LockWaitTime  time.Duration // total time spent waiting for locks
	MeanTxTime    time.Duration // mean duration of finished transactions
	ByStrategy    map[string]StrategyStats
	WALBatches    uint64  // group-commit batches written
	WALRecords    uint64  // commit records written
	MeanBatchSize float64 // records per batch
	Fsyncs        uint64
	Checkpoints   uint64
	MemtableBytes int64
	ReadTS        uint64 // the read watermark
}

func (c *counters) noteEnd(tx *Tx, committed bool) {
	sc := &c.byStrategy[tx.requested]
	if committed {
		c.commits.Add(1)
		sc.commits.Add(1)
	} else {
		c.aborts.Add(1)
		sc.aborts.Add(1)
	}
	c.txNanos.Add(uint64(time.Since(tx.start)))
	c.txCount.Add(1)
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
	s := Stats{
		Commits: c.commits.Load(), Aborts: c.aborts.Load(), Conflicts: c.conflicts.Load(),
		Deadlocks: c.deadlocks.Load(), LockTimeouts: c.lockTimeouts.Load(),
		Retries: c.retries.Load(), NotAvailable: c.notAvailable.Load(),
		Checkpoints: c.checkpoints.Load(), MemtableBytes: db.store.MemBytes(),
		ReadTS: db.store.ReadTS(), ByStrategy: make(map[string]StrategyStats),
	}
	if n := c.txCount.Load(); n > 0 {
		s.MeanTxTime = time.Duration(c.txNanos.Load() / n)
	}
	for st := Pessimistic; st <= Adaptive; st++ {
		sc := &c.byStrategy[st]
		s.ByStrategy[st.String()] = StrategyStats{Commits: sc.commits.Load(), Aborts: sc.aborts.Load()}
	}
	lm := db.locks.Stats()
	s.LockWaits, s.LockWaitTime = lm.Waits, lm.WaitTime
	db.addLogStats(&s)
	return s
}

func (db *DB) addLogStats(s *Stats) {
	if db.log == nil {
		return
	}
	ls := db.log.Stats()
	s.WALBatches, s.WALRecords, s.Fsyncs = ls.Batches, ls.Records, ls.Fsyncs
	s.MeanBatchSize = ls.MeanBatch()
}
