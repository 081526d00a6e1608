// Package deadlock is txkv's wait-for graph: it knows nothing of locks or
// keys, only that "transaction A waits for transaction B". The lock manager
// (lockmgr) keeps the graph in step with its queues and asks it for cycles.
//
// # The graph
//
// A node is a transaction ID. A transaction that is blocked has a node with
// what it waits on (an opaque payload, the lock request in lockmgr) and its
// out-edges; a transaction that only holds locks has no node of its own but
// may be the target of edges. Each waiter waits on one request at a time, so
// its out-edges are replaced as a whole (SetWaits) whenever its queue
// changes:
//
//	      hard: T2 holds a conflicting lock           soft: T3 is queued ahead
//	T1 ───────────────────────────────▶ T2        T4 ─ ─ ─ ─ ─ ─ ─ ─ ─ ─ ▶ T3
//
//	  key k:  holders [T2:S]   queue [T3:X] [T4:S] [T1:X]
//	  edges:  T3→T2 (hard)     T4→T2? no: S/S compatible; T4 ~> T3 (soft)
//	          T1→T2 (hard), T1 ~> T4 (soft: nearest earlier conflicting)
//
// Hard edges point at holders of conflicting locks; soft edges point at
// conflicting requests queued ahead (PostgreSQL's lmgr README calls them
// soft because the queue order, not a held lock, creates them). Only the
// NEAREST earlier conflicting waiter gets a soft edge: that waiter itself
// has edges to everything before it, so reachability (and thus every cycle)
// is preserved while a hot key with N waiters costs O(N) edges, not O(N²).
//
// # Invariants
//
//   - A node exists exactly while its transaction is blocked.
//   - Out-edges are sorted by holder, without duplicates (a hard edge wins
//     over a soft one to the same transaction) and without self-edges.
//   - indeg counts the edges pointing at each transaction. A transaction
//     nobody waits for cannot be on a cycle, so the common case - a new
//     waiter at the tail of a queue - is answered in O(1) without a search.
//
// # Searching
//
// FindCycle(from) is a depth-first search from the transaction that just
// started to wait, visiting each waiting transaction at most once: O(V+E).
// Before that wait the graph was acyclic (every earlier cycle was broken),
// so any new cycle runs through the new waiter and this search is complete:
// the request that closes a cycle always finds it (InnoDB's immediate
// detection). FindAnyCycle is the coloured DFS over the whole graph used by
// periodic sweeps (PostgreSQL runs its check after deadlock_timeout instead
// of on every wait).
//
// # Modes and victims
//
//	Immediate  search on every new wait (default; innodb_deadlock_detect=ON)
//	Periodic   a Sweeper goroutine searches the whole graph every interval
//	Off        never search; lock timeouts end deadlocks
//
// ChooseVictim picks exactly one transaction per cycle: Youngest (largest
// ID: the least work lost, Gray & Reuter) or Requester (the transaction
// whose wait closed the cycle, PostgreSQL's choice). The caller must re-check
// the cycle against its live lock table before aborting anyone - the graph
// may lag the table - which is why the *Locked methods exist: the lock
// manager freezes its table, re-verifies each edge, and only then acts.
//
// # References
//
//   - PostgreSQL, src/backend/storage/lmgr/README ("Deadlock detection",
//     hard and soft edges, queue rearrangement) and deadlock.c.
//   - MySQL InnoDB, lock0lock.cc: immediate detection, innodb_deadlock_detect.
//   - Gray & Reuter, Transaction Processing, §7.11 (wait-for graphs, victims).
//   - CockroachDB, pkg/kv/kvserver/concurrency (distributed deadlock
//     detection by push; its lock_table docs inspired this package's style).
package deadlock
