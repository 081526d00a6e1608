package txn

import "github.com/txkv/txkv/steer"

// This file is the strategy table of the package doc, as code. Two
// questions decide everything a strategy changes in the engine:
//
//   - How does this attempt run? A runMode: strict two-phase locking,
//     optimistic, or optimistic with hot keys locked (MOCC). Reads, writes,
//     scans and commit-time validation ask only the attempt's runMode.
//   - What does the strategy do around its attempts? A policy: how a new
//     attempt runs, whether its pessimistic reads of keys being written
//     lock them exclusively, whether it records reads for its retry, what a
//     retry runs as and locks first, and which memory (package steer) learns
//     from its Updates.
//
// Adding a strategy is adding its enum value (options.go), one row to
// policies and its tests; the engine asks nothing else.

// runMode is how one attempt of a transaction runs.
type runMode uint8

const (
	// runLocking is strict two-phase locking: reads take S and see the
	// latest committed version, writes take X; every lock is held to the end,
	// so commit validates nothing.
	runLocking runMode = iota + 1
	// runOptimistic reads a snapshot without locks, buffers writes, and
	// validates what it read at commit (Kung & Robinson; Silo).
	runOptimistic
	// runHotLocking is runOptimistic except for keys whose conflict
	// temperature reached the threshold, or that the failed attempt wrote:
	// those are locked when read or written (MOCC).
	runHotLocking
)

// strategy is what Tx.Strategy reports for an attempt in this mode.
func (m runMode) strategy() Strategy {
	switch m {
	case runLocking:
		return Pessimistic
	case runHotLocking:
		return Adaptive
	}
	return Optimistic
}

// policy is one strategy's answers to the questions the engine asks.
type policy struct {
	// start is how a new attempt runs when no retry plan says otherwise.
	start func(db *DB) runMode
	// exclusiveRecentReads: when an attempt of this strategy runs
	// pessimistically on a file, reads of keys written lately take X rather
	// than S, so two readers of a hot key never deadlock upgrading (ops.go,
	// readMode). Plain Pessimistic stays strict 2PL.
	exclusiveRecentReads bool
	// recordsForRetry: reads are recorded even under Snapshot isolation
	// (which validates none), because a retry locks them first.
	recordsForRetry bool
	// retry plans the next attempt after a retryable failure (before any
	// escalation, which every strategy shares: update.go).
	retry func(db *DB, tx *Tx) nextAttempt
	// memory returns the memory that learns from this strategy's Updates,
	// if any.
	memory func(db *DB) (*steer.Hybrid, *steer.Adaptive)
	// optimisticAs is what Tx.Strategy reports for this strategy's
	// optimistic attempts (zero: Optimistic).
	optimisticAs Strategy
}

// policies is the strategy table, indexed by Strategy (StrategyDefault is
// resolved to the DB's strategy before anything looks here).
//
//	strategy     start                     pessimistic reads   retry runs as, locks first
//	───────────  ────────────────────────  ──────────────────  ───────────────────────────────────
//	Pessimistic  locking                   S                   as planned (nothing first)
//	Optimistic   optimistic                —                   as planned (nothing first)
//	Hybrid       optimistic (locking while X if written lately  locking; S on what it read,
//	             its memory says so)                           X on what it wrote
//	Adaptive     the arm its memory picks  X if written lately  5–20% conflicts: as Hybrid;
//	             (MOCC, optimistic,                            else MOCC's retrospective lock list
//	             locking)
var policies = [...]policy{
	Pessimistic: {start: always(runLocking), retry: asPlanned},
	Optimistic:  {start: always(runOptimistic), retry: asPlanned},
	Hybrid: {start: always(runOptimistic), exclusiveRecentReads: true, recordsForRetry: true,
		retry: hybridRetry, memory: hybridMemory, optimisticAs: Hybrid},
	Adaptive: {start: adaptiveStart, exclusiveRecentReads: true, recordsForRetry: true,
		retry: adaptiveRetry, memory: adaptiveMemory},
}

// numStrategies sizes the per-strategy counters: the table's length
// (TestStrategyTable checks they agree; the constant cannot be len(policies),
// since the counters live in DB, which the table's functions refer to).
const numStrategies = int(Adaptive) + 1

// valid reports whether s is a strategy of the table.
func (s Strategy) valid() bool {
	return s > StrategyDefault && int(s) < numStrategies
}

// policy returns the transaction's requested strategy's row.
func (tx *Tx) policy() *policy { return &policies[tx.requested] }

func always(m runMode) func(*DB) runMode { return func(*DB) runMode { return m } }

// asPlanned: the retry runs as the strategy starts, locking nothing first.
func asPlanned(*DB, *Tx) nextAttempt { return nextAttempt{} }

// hybridRetry: the retry runs pessimistically and first locks, in key
// order, what the failed attempt read (S) and wrote (X). An attempt that
// started pessimistic (its memory said so) and lost a deadlock retries as
// Pessimistic does: its reads took S locks and were not recorded, so a
// prelock could cover only what it wrote — which lengthens the X holds and,
// measured, doubled the deadlocks.
func hybridRetry(_ *DB, tx *Tx) nextAttempt {
	if tx.run == runLocking {
		return nextAttempt{plan: &retryPlan{pessimistic: true}}
	}
	return nextAttempt{plan: &retryPlan{pessimistic: true, pre: tx.touched()}}
}

// adaptiveRetry: with the DB-wide conflict rate in the guide's hybrid band
// (or above), as Hybrid; below it, MOCC's retrospective lock list. An
// attempt its memory ran plainly (optimistic or pessimistic) retries as
// planned.
func adaptiveRetry(db *DB, tx *Tx) nextAttempt {
	switch {
	case tx.run != runHotLocking:
		return nextAttempt{}
	case db.window.Rate() >= steer.LowConflict:
		return nextAttempt{plan: &retryPlan{pessimistic: true, pre: tx.touched()}}
	}
	return db.retrospective(tx)
}

// adaptiveStart decides how an Adaptive attempt runs. The two ends of the
// threshold are the MOCC test oracle: AdaptiveAlways locks every read
// (exactly Pessimistic), AdaptiveNever none (exactly Optimistic). In between it runs
// the arm the measured steering (package steer) currently finds cheapest:
// MOCC, plain optimistic, or — tried when the windowed conflict rate is over
// the guide's 20% — pessimistic.
func adaptiveStart(db *DB) runMode {
	switch th := db.cfg.AdaptiveThreshold; {
	case th == AdaptiveAlways:
		return runLocking
	case th >= AdaptiveNever:
		return runOptimistic
	}
	switch db.steering.adaptive.Arm() {
	case steer.ArmOptimistic:
		return runOptimistic
	case steer.ArmPessimistic:
		return runLocking
	}
	return runHotLocking
}

func hybridMemory(db *DB) (*steer.Hybrid, *steer.Adaptive) { return &db.steering.hybrid, nil }

// adaptiveMemory: only thresholds strictly between the two oracle ends are
// steered (the ends must behave exactly as Pessimistic and as Optimistic).
func adaptiveMemory(db *DB) (*steer.Hybrid, *steer.Adaptive) {
	if th := db.cfg.AdaptiveThreshold; th > 0 && th < AdaptiveNever {
		return nil, &db.steering.adaptive
	}
	return nil, nil
}
