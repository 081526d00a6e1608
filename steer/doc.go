// Package steer holds the measurements that steer txkv's automatic
// strategies, Hybrid and Adaptive: how hot each key is, how often recent
// transactions conflicted, which keys were written lately, and what each way
// of running a transaction has been costing. It decides nothing about
// correctness — every choice it makes selects a correct strategy — only which
// correct strategy is cheapest now. Everything here is small structs over
// plain values (atomics, a clock, counts): no database, no locks held across
// calls, so each piece is tested on its own.
//
// # The signals and who reads them
//
//	commit / abort of a read-write attempt (txn)
//	   │
//	   ├──► Window.Note(id, conflicted) ──► Window.Rate()  conflicts/attempts, last 10 s
//	   │                                       │             (Stats.ConflictRate, Advice,
//	   │                                       │              Adaptive's retry plan)
//	   ├──► Temperature.Heat(key, written)     │
//	   │       on a validation failure         ▼
//	   │    Temperature.Of(key) ≥ threshold ─► Adaptive (MOCC) locks key at read time;
//	   │    Temperature.Exclusive(key)      ─► … exclusively when its conflicts were
//	   │                                        read-modify-writes (no S→X upgrade deadlock)
//	   ├──► Hybrid.FirstAttempt(failed)   ──► Hybrid.Start(): optimistic first, or
//	   │                                        pessimistic while >10% of first attempts fail
//	   └──► Adaptive.Observe(committed, env) ► Adaptive.Arm(): MOCC, plain optimistic or
//	                                            pessimistic, the arm wasting least per commit
//
//	Window's clock goroutine ──samples the read watermark──► Window.RecentlyWritten(version)
//	                                                         (pessimistic Hybrid/Adaptive reads
//	                                                          of a key being written take X)
//
// # Invariants
//
//   - A wrong guess costs speed, never correctness: every arm and every mode
//     is one of the engine's correct strategies, and the engine validates or
//     locks as that strategy requires whatever the signals say.
//   - Temperature collisions (two keys in one slot) only make a cold key look
//     warm — a needless lock — never a hot key look cold.
//   - Counting is cheap on the commit path: Window.Note reads a coarse clock
//     kept by the window's own goroutine and adds to one of several
//     cache-line-separated shards; Temperature reads no clock for a slot
//     that never heated; RecentlyWritten is one atomic load.
//   - The memories count events (failed attempts, lock waits, commits), not
//     time: on a shared machine commit rates swing by a third from one
//     millisecond to the next, while events per commit barely move.
//   - Window owns one goroutine, started by Start and ended (and waited for)
//     by Stop.
//
// # Where to read
//
//	temperature.go  MOCC's per-key temperature, decaying per 500 ms epoch
//	window.go       the windowed conflict rate; recently written keys
//	hybrid.go       Hybrid's memory: when to start pessimistic, when to probe back
//	adaptive.go     Adaptive's cost-based choice among its three arms
//
// # References
//
//   - Wang & Kimura, "Mostly-Optimistic Concurrency Control for Highly
//     Contended Dynamic Workloads on a Thousand Cores", VLDB 2016 (MOCC):
//     temperature, hot-key locking at read time, the retrospective lock list.
//   - The decision guide's conflict-rate bands (docs/guide.md): below 5%
//     optimistic, 5–20% hybrid, above 20% pessimistic — LowConflict and
//     HighConflict here.
//   - CockroachDB's txnwait and contention events
//     (pkg/kv/kvserver/concurrency) for measuring contention as events.
package steer

// The conflict-rate bands of the decision guide: below LowConflict
// optimistic concurrency wins, above HighConflict pessimistic locking, and
// in between Hybrid. The advisor states them as rules; Adaptive uses them to
// decide when probing another arm can pay off.
const (
	LowConflict  = 0.05
	HighConflict = 0.20
)
