// Package lockmgr is txkv's lock table: shared and exclusive locks on point
// keys and key ranges, FIFO wait queues, three wait policies (block, NOWAIT,
// SKIP LOCKED), timeouts, and deadlock handling through package deadlock.
// It knows nothing of versions or storage: a lock is (transaction, target,
// mode).
//
// # Modes
//
// Two modes and one compatibility function, Conflicts(held, requested):
//
//	          requested
//	        +-----+-----+
//	held    |  S  |  X  |
//	+-------+-----+-----+
//	|   S   |  ok |  ✗  |
//	|   X   |  ✗  |  ✗  |
//	+-------+-----+-----+
//
// A transaction never conflicts with itself. A point and a range conflict
// when the point lies in [start, end) and the modes conflict; two ranges
// when they overlap and the modes conflict.
//
// # Data structures
//
//	Manager
//	 ├─ shards[64]  (hash of key → shard; one mutex each)
//	 │    └─ heads: map[hash]*lockHead ── hnext (collisions)
//	 │          lockHead "k"
//	 │           ├─ holders: [T1:S] ⇄ [T3:S]              (granted, any order)
//	 │           └─ waiters: [T3:X↑] ⇄ [T2:X] ⇄ [T4:S]    (FIFO; upgrades ↑ first)
//	 ├─ rt: range table  [T5:S [a,m) granted] [T6:X [c,d) waiting] ...
//	 │      written with EVERY shard locked, read with ANY one shard locked
//	 ├─ txns[64]: txn → {held list, label}
//	 └─ graph: deadlock.Graph[*request]  (waiter → holders, hard/soft)
//
// Lock order: shard[0] → … → shard[n-1] → txn shard → graph. A point
// operation holds one shard; range operations, deadlock resolution and
// snapshots (Locks) hold all shards. Because the range table can only change
// while every shard is locked, a point operation reads it safely under its
// own shard lock - and skips it entirely while it is empty. The uncontended
// path (no head for the key, no range lock) allocates nothing: heads and
// requests are recycled per shard and keys are copied into reused buffers.
//
// # Granting (DESIGN §4)
//
//   - Re-entrant: a request for a mode the transaction already holds (or a
//     weaker one) on the target, or on a range covering it, returns at once.
//   - A new request is granted at once only if it is compatible with every
//     holder AND no conflicting request is queued ahead of it: no barging, so
//     a stream of S requests cannot starve an X waiter.
//   - Upgrade (the transaction already holds a lock on the target): the
//     request goes ahead of every ordinary waiter and needs only the other
//     holders' consent - PostgreSQL's rule, so "T1 holds S, T2 waits for X,
//     T1 asks X" is granted to T1, not a deadlock.
//   - On release, cancel or timeout the queue is rescanned in order: each
//     waiter compatible with the holders and with every earlier still-waiting
//     request is granted. [S1 S2 X3 S4] after an X release grants S1 and S2;
//     X3 waits for them; S4 waits behind X3.
//   - Hand-off is atomic: the releaser moves the waiter into the holders
//     under the shard lock, then closes its ready channel. A waiter woken by
//     its timer or context re-takes the lock and looks at its state: granted
//     wins (nil), otherwise it removes itself and returns the error. So a
//     grant racing a timeout has exactly one outcome.
//   - NoWait and SkipLocked apply the same test and return
//     ErrLockNotAvailable instead of queueing: no queue entry, no edge. The
//     error is a *LockError naming the holders and the requests queued
//     ahead — the edges the request would have had — as a timeout's is.
//
// Range and point requests share one queue order: upgrades first, then
// arrival (a global sequence number taken when a request queues). A point
// request waits for conflicting ranges covering it that are queued ahead,
// and a range request for conflicting point requests inside it that are.
//
// # Deadlocks
//
// Each waiter's out-edges are recomputed whenever its queue changes: hard
// edges to conflicting holders, a soft edge to the nearest conflicting
// request queued ahead (see package deadlock for why that suffices). In
// Immediate mode a transaction that starts to wait searches for a cycle
// through itself; in Periodic mode a sweeper searches the whole graph.
// Either way a cycle is then re-checked against the live table with every
// shard locked (no false reports), and broken:
//
//  1. Soft deadlock (PostgreSQL deadlock-soft): if a member's only blockers
//     are requests queued ahead of it, it is compatible with every holder;
//     it is granted out of queue order and nobody aborts.
//  2. Otherwise one victim - the youngest (largest ID) by default, or the
//     requester - has its pending wait ended with a *DeadlockError that
//     lists the whole cycle (waiter, holder, key or range, mode, soft).
//
// Breaking one cycle can leave another that shared members with it, so the
// resolver keeps going on the frozen table until the graph is acyclic.
//
// # References
//
//   - PostgreSQL, src/backend/storage/lmgr/README and lock.c (upgrade
//     ordering, NOWAIT, SKIP LOCKED, soft edges); isolation specs
//     deadlock-soft, nowait-3, skip-locked-3, tuplelock-upgrade-no-deadlock.
//   - MySQL InnoDB, lock0lock.cc (immediate detection, lock_wait_timeout).
//   - CockroachDB, pkg/kv/kvserver/concurrency/lock_table.go (queue
//     documentation, waiters that jump the queue).
//   - Gray & Reuter, Transaction Processing, ch. 7-8 (lock modes, FIFO
//     granting, conversion, wait-for graphs).
package lockmgr
