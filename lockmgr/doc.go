// Package lockmgr is txkv's lock table: shared and exclusive locks on point
// keys and key ranges, FIFO wait queues, four wait policies (block, NOWAIT,
// SKIP LOCKED, no-wait with a timeout error), timeouts, and deadlock
// handling through package deadlock. It knows nothing of versions or
// storage: a lock is (transaction, target, mode).
//
// # Where to read
//
// One file per step, in the order a request meets them; a waiting point
// request is followed through acquire.go, wait.go and release.go, each
// read top to bottom:
//
//	manager.go   the Manager: Options, the shard and transaction-shard mu
//	             structs, the lock order, New, Close, labels and ages
//	queue.go     the records: request, reqList, lockHead; a shard's heads
//	             and free lists
//	acquire.go   1. Acquire: the point path, the grant decision (the
//	             edges), refusal, enqueue
//	wait.go      2. block: OnWait, the deadlock search (detect.go), the one
//	             select over grant, timer, ctx and Close; finishWait settles
//	             the outcome and withdraws a request that did not get the lock
//	release.go   3. ReleaseAll: refresh of the queue heads behind a holder
//	             that left, grant and hand-off (what wakes a waiter)
//	ranges.go    the same steps for a range request, and what the point
//	             path asks of the range table
//	detect.go    deadlocks: the search a new waiter runs, the sweeper, and
//	             breaking a cycle (reorder, rearrange, victim)
//
// Beside them: introspect.go (Locks, WaitingOn, Holds, Held, WriteDOT),
// errors.go, stats.go and mode.go (modes, wait policies, targets).
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
//	 │           └─ waiters: [T3:X↑] ⇄ [T2:X] ⇄ [T4:S]    (queue order; upgrades ↑ first)
//	 │                         each waiter caches prevX, the nearest X ahead
//	 ├─ rt: range table  [T5:S [a,m) granted] [T6:X [c,d) waiting] ...
//	 │      written with EVERY shard locked, read with ANY one shard locked
//	 ├─ txns[64]: txn → {held list, label, age}
//	 └─ graph: deadlock.Graph[*request]  (waiter → blockers, hard/soft)
//
// Lock order: shard[0] → … → shard[n-1] → txn shard → graph. A point
// operation holds one shard; range operations, deadlock resolution and
// snapshots (Locks) hold all shards. Because the range table can only change
// while every shard is locked, a point operation reads it safely under its
// own shard lock - and skips it entirely while it is empty. The uncontended
// path (no head for the key, no range lock) allocates nothing: heads and
// requests are recycled per shard and keys are copied into reused buffers.
//
// # Queue order and granting
//
//   - Re-entrant: a request for a mode the transaction already holds (or a
//     weaker one) on the target, or on a range covering it, returns at once.
//   - No barging: a request is granted at once only if it is compatible with
//     every holder AND no conflicting request is queued ahead of it, so a
//     stream of S requests cannot starve an X waiter.
//   - On release, cancel or timeout the queues are re-examined: each waiter
//     with no conflicting holder and no conflicting request ahead of it
//     (still waiting, or just granted) is granted. [S1 S2 X3 S4] after an X
//     release grants S1 and S2; X3 waits for them; S4 waits behind X3.
//   - Hand-off is atomic: the releaser moves the waiter into the holders
//     under the shard lock, then closes its ready channel. A waiter woken by
//     its timer or context re-takes the lock and looks at its state: granted
//     wins (nil), otherwise it removes itself and returns the error. So a
//     grant racing a timeout has exactly one outcome.
//   - NoWait, SkipLocked and a Block request with a timeout of 0 apply the
//     same test and, instead of queueing, return a *LockError naming the
//     holders and the requests queued ahead - the edges the request would
//     have had: no queue entry, no edge, so such a request can neither
//     close a deadlock nor make anyone a victim. A timeout of 0 is a lock
//     timeout: its error matches ErrLockTimeout and says the request did
//     not wait. (One convention for wait bounds everywhere: > 0 at most
//     that long, 0 not at all, Forever without a bound.)
//
// "Ahead" is one queue order, shared by the point queues and the range
// table: arrival, with one exception (PostgreSQL's), decided per lock.
// Request A goes ahead of waiting request B when A's transaction already
// holds a granted lock that overlaps B's target (A "passes" B) and B's
// transaction does not pass A. If that lock conflicts with B, B waits for
// A's transaction whatever the order, and A queued behind B could only
// deadlock. On one key this is the S->X upgrade, which goes ahead of the
// key's queue: "T1 holds S, T2 waits for X, T1 asks X" is granted to T1 as
// soon as the other holders allow, not a deadlock. For a range it applies
// only where the range meets what the transaction holds:
//
//	T1 S(b); T2 S(n); T3 waits for X(n)
//	T1 asks S[a,z)       -> waits behind T3: n overlaps nothing T1 holds
//	T5 waits for X(b), behind T1's S(b) -> T1's range goes ahead of T5
//
// so a transaction that read b before scanning [a,z) does not barge past
// writers queued elsewhere in the range. Whether A passes B is fixed while
// both wait (a waiting transaction gains and loses no lock), so the order
// is stable. It is a relation on pairs, not a sort key, and nothing needs
// it to be transitive: a waiter is granted when nothing ahead of it
// conflicts, whatever order the waiters are examined in. A deadlock
// resolution may move a waiter (below), which changes its place in the
// arrival order.
//
// # Edges
//
// The wait-for relation says: W waits for every other transaction holding
// a conflicting lock on its target, and for every conflicting request
// queued ahead of it. Written out, a hot key with N waiters has O(N²) soft
// edges and N hard edges that all change at every release. The graph keeps
// fewer edges with the same reachability, hence the same cycles. For a
// point request W on key k, with P the nearest exclusive request queued
// ahead of W on k (cached as W.prevX):
//
//   - W shared: an edge to P only. W conflicts only with exclusive requests;
//     those ahead of P are reachable through P (below).
//   - W exclusive: an edge to every request back to and including P. W
//     conflicts with the shared requests between P and W, and P does not
//     reach them: [S1 S2 X3] - S2 has no edge to S1 (S/S), and S1 may wait
//     for a range request that S2 passed, so "the nearest conflicting
//     waiter has edges to everything before it" would be false here.
//   - Only without P: hard edges to the conflicting holders of k and of
//     granted ranges covering k. With P they are reachable through P.
//   - Every conflicting range request queued ahead of W (ranges are rare).
//
// Range requests keep all their edges. Why P reaches the rest, by induction
// on queue position: P is exclusive, so it conflicts with every holder and
// every request ahead of it; it has the hard edges itself (no X ahead of
// it) or reaches them through its own P', and its edges cover the requests
// back to P', whose edges cover those back to the X before it, and so on to
// the front. So every transaction W truly waits for is reachable from W:
// the graph and the full relation have the same transitive closure.
//
// The payoff: on a key with N exclusive waiters each has one edge. A
// release grants the first waiter and gives the second its holder edges;
// every request behind the first exclusive waiter that still waits has
// edges only to requests at or after it, so nothing there changes and the
// re-examination stops (refreshHeadLocked). O(1) per release, O(N) to drain
// the key, where rewriting every waiter's edges at every release cost
// O(N²). The error of a refused or timed-out request lists every
// conflicting holder, not only the graph's edges; and a deadlock report
// takes the shortest way round its cycle that the full relation offers
// (shortcut), so a victim is chosen among the transactions that matter,
// not among bystanders of a long queue.
//
// # Deadlocks
//
// In Immediate mode a transaction that starts to wait searches for a cycle
// through itself; in Periodic mode a sweeper searches the whole graph.
// Either way a cycle is then re-checked against the live table with every
// shard locked (no false reports), and broken:
//
//  1. Reorder (PostgreSQL deadlock-soft): a member whose only blockers are
//     requests queued ahead of it is compatible with every holder; it is
//     granted out of queue order and nobody aborts.
//  2. Rearrange (PostgreSQL's deadlock.c reorders a wait queue): for a soft
//     edge A ~> B of the cycle, where B is ahead of A by arrival alone, A is
//     moved just ahead of B. A still waits for its holders; B and the
//     requests A passed now wait for A. Every new edge points at A, so if
//     no cycle runs through A the graph is acyclic and the move stays;
//     otherwise it is undone. One move per soft edge is tried, not
//     combinations (PostgreSQL searches deeper).
//  3. Otherwise one victim - the youngest by default, or the requester -
//     has its pending wait ended with a *DeadlockError that lists the
//     cycle (waiter, holder, key or range, mode, soft). Youngest means the
//     largest age (SetAge; a transaction without one is as old as its ID),
//     ties broken by the larger ID: an engine that retries a victim under
//     a new ID keeps the first attempt's age, so the retry grows older and
//     eventually wins instead of losing round after round.
//
// A rearrangement, where each member also waits for a holder so none can
// simply be granted:
//
//	T1 S(k); T2 X(q); T3 waits for S[a,z) (for T2)
//	T4 holds X(zz), waits for X(k): for T1, and behind T3's range
//	T2 asks X(zz): T2 -> T4 ~> T3 -> T2
//	T4 moves ahead of T3: T2 -> T4 -> T1, T3 -> T2, T3 ~> T4: no cycle
//
// Breaking one cycle can leave another that shared members with it, so the
// resolver keeps going on the frozen table until the graph is acyclic.
// Options.OnDeadlock is called once per victim after every mutex is
// released. It runs inside the Acquire that closed the cycle; if it panics,
// that Acquire's deferred cleanup withdraws its queued request on the way
// out (else it would later be granted to nobody), and the other victims are
// still reported.
//
// # Memory
//
// Recycling is bounded: per shard at most 256 free heads and requests, a
// recycled head keeps a key buffer of at most 256 bytes, the scratch
// slices of a queue re-examination at most 1024 entries; the shard maps
// and the graph's maps, which Go never shrinks, are rebuilt once empty
// after a peak of more than 1024 entries. After a burst of large keys or a
// deep queue the live heap returns near where it was.
//
// # References
//
//   - PostgreSQL, src/backend/storage/lmgr/README, lock.c, proc.c (upgrade
//     ordering, NOWAIT, SKIP LOCKED) and deadlock.c (soft edges, wait queue
//     rearrangement); isolation specs deadlock-soft, nowait-3,
//     skip-locked-3, tuplelock-upgrade-no-deadlock.
//   - MySQL InnoDB, lock0lock.cc (immediate detection, lock_wait_timeout;
//     since 8.0.18 one blocker per waiter instead of edges to every lock).
//   - CockroachDB, pkg/kv/kvserver/concurrency/lock_table.go (queue
//     documentation, waiters that jump the queue, priorities that survive
//     retries).
//   - Gray & Reuter, Transaction Processing, ch. 7-8 (lock modes, FIFO
//     granting, conversion, wait-for graphs).
package lockmgr
