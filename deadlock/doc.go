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
// Hard edges point at holders of conflicting locks; soft edges point at
// conflicting requests queued ahead (PostgreSQL's lmgr README calls them
// soft because the queue order, not a held lock, creates them).
//
// # Fewer edges, same cycles
//
// The full relation - an edge to every conflicting holder and to every
// conflicting request queued ahead - costs O(N²) edges on a hot key with N
// waiters, and N edge rewrites at every release. The owner may keep fewer
// edges as long as every transaction a waiter truly waits for stays
// REACHABLE from it: then the graph and the full relation have the same
// transitive closure, hence exactly the same cycles, and every edge kept is
// still a true one (no false deadlocks). lockmgr keeps, on each key's queue:
//
//	key k:  holders [T2:S]   queue [T3:X] [T4:S] [T1:X]
//	edges:  T3 -> T2            hard: no X ahead of T3, so it has the holder edges
//	        T4 ~> T3            soft: the nearest X ahead (S/S with T2: no conflict)
//	        T1 ~> T4, T1 ~> T3  soft: back to the nearest X; T2 reached via T3
//
// A shared waiter has an edge to the nearest exclusive waiter ahead; an
// exclusive waiter to every waiter back to and including that one; only a
// waiter with no exclusive waiter ahead has edges to the holders. The
// reason it suffices is the nearest EXCLUSIVE waiter P: P conflicts with
// everything, so (by induction along the queue) P reaches every holder and
// every request ahead of it. It is not true that "the nearest conflicting
// waiter has edges to everything before it": in [S1 S2 X3], S2 is X3's
// nearest conflicting waiter and has no edge to S1 (S/S do not conflict),
// and S1 may wait for something S2 does not (a range request that S2's
// transaction passes because it holds a lock inside it). That is why X3
// keeps an edge to S1 as well. On a key with N exclusive waiters each has
// one edge; a release changes the edges of the next waiter only.
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
// of on every wait). A cycle found in a graph with fewer edges may be
// longer than the shortest true one (it follows a queue where the waiter
// also waits for a holder directly); the owner shortens it with the full
// relation before choosing a victim.
//
// # Soft cycles
//
// A cycle with a soft edge may be broken without an abort, by changing the
// queue order (PostgreSQL's deadlock.c). lockmgr does it in two ways: it
// grants a member whose only blockers are queued requests, out of order;
// or, for a soft edge A ~> B, it moves A just ahead of B and keeps the move
// if no cycle runs through A afterwards. The limit, plainly: one move per
// soft edge is tried, never a combination of moves, and B must be ahead of
// A by arrival alone (not because B's transaction holds a lock inside A's
// target). A cycle that only several moves together would break costs a
// victim, where PostgreSQL's bounded search over orderings might find the
// combination.
//
// # Modes and victims
//
//	Immediate  search on every new wait (default; innodb_deadlock_detect=ON)
//	Periodic   a Sweeper goroutine searches the whole graph every interval
//	Off        never search; lock timeouts end deadlocks
//
// ChooseVictimByAge picks exactly one transaction per cycle: Youngest (the
// largest age, ties by the larger ID: the least work lost, Gray & Reuter)
// or Requester (the transaction whose wait closed the cycle, PostgreSQL's
// choice). Ages are the caller's: by default a transaction's ID, but an
// engine that retries a victim under a new ID passes the first attempt's,
// so a retry grows older instead of being the youngest every round
// (wound-wait's timestamps, CockroachDB's priorities). ChooseVictim is the
// same with every age equal to the ID. The caller must re-check the cycle
// against its live lock table before aborting anyone - the graph may lag
// the table - which is why the *Locked methods exist: the lock manager
// freezes its table, re-verifies each edge, and only then acts.
//
// After a peak of more than a thousand waiters, the graph's maps (which Go
// never shrinks) are rebuilt small once the graph is empty again.
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
