// Package bench measures txkv's concurrency-control strategies on the eight
// workloads of the decision guide, and checks after every run that the
// workload's business invariant survived.
//
// # Why these workloads
//
// The guide's advice — lock when conflicts are frequent and data is
// critical, validate optimistically when conflicts are rare, mix the two in
// between — is a claim about costs: a pessimistic transaction pays for a
// lock on every access and waits behind every holder; an optimistic one
// pays nothing until commit, and then pays the whole transaction again when
// validation fails. Which cost is smaller depends on how often transactions
// collide (the conflict rate), how long they stay open (a lock held longer
// blocks more; an optimistic attempt that runs longer loses more when it is
// thrown away), and how many of them only read. Each workload fixes one
// point of that space the guide names, and lets the conflict rate move:
//
//	workload   models                              conflict  reads:writes  length   guide says
//	---------  ----------------------------------  --------  ------------  -------  -----------
//	bank       transfers between accounts          high      1:1           short    pessimistic
//	inventory  shop browsing and buying            low       10:1          short    optimistic
//	tickets    seat maps and seat booking          moderate  5:1           medium   hybrid
//	likes      social counters                     low       100:1         short    optimistic
//	medical    patient record edits (critical)     medium    1:1           medium   pessimistic
//	content    CMS articles, long transactions     low       20:1          long     optimistic
//	flashsale  order queue, SKIP LOCKED workers    extreme   1:1           short    pessimistic
//	collab     playlist edits, version checks      medium    1:1           human    optimistic
//
// The "guide says" column is Advise(spec.Profile): the guide's flowchart
// applied to the profile each Spec declares. The runner (cmd/txkvbench)
// prints it next to the measured winner, and marks where they disagree by
// more than the noise between repeated runs — the point of measuring is to
// find out.
//
// # Written the way the guide says
//
// Each workload's transactions are written the way the guide tells users to
// write them under each strategy (Spec.Recipe). Under Pessimistic, a
// transaction locks what it will write before reading it, exclusively and in
// canonical order (LockKeys: the guide's bank transfer, and §4's deadlock
// prevention), and a reader of several keys takes their shared locks in that
// order too: no S→X upgrades, no opposite orders, so no deadlocks — a
// deadlock in a pessimistic cell is reported as a failed check
// (Spec.DeadlockFree). Under the other strategies it reads plainly, as the
// guide's optimistic and hybrid recipes do: explicit locks are real locks
// under every strategy, and would make them pessimistic. Collaborative
// editing loads in View and saves with PutIfVersion under every strategy.
//
// # The two knobs
//
// Contention is the hot-set size: the number of accounts, products, seats,
// posts, patients, articles or playlists the operations spread over. With
// W workers each touching k of N items, two transactions collide with
// probability about k²/N per pair, so N is the dial from "every
// transaction collides" to "almost none do". Think time is a sleep inside
// the transaction between its reads and its writes (for collab: between
// fetching the playlist and submitting the edit, outside any transaction,
// because that is where a human edits). It stretches the window in which a
// conflict can happen, and the time a lock is held.
//
// # What each workload checks
//
//	bank       sum of balances conserved; no balance negative
//	inventory  stock = initial + deliveries - orders, never below zero
//	tickets    every booking record names a seat that names it back
//	           (no seat sold twice); bookings = booked seats = acknowledged
//	likes      every counter = its like records (one key per user and
//	           post, so a second like is refused: idempotent)
//	medical    a record at edit n has history entries 1..n, and they are
//	           exactly the acknowledged edits (no lost update)
//	content    article revision = sum of its section edits, in the final
//	           state and in every committed reader's view (no torn read)
//	flashsale  stock = initial - fulfilled, never below zero; every
//	           acknowledged order is queued or has exactly one result
//	collab     each playlist equals the replay of its operation log, and
//	           holds every acknowledged insert exactly once
//
// A check reads the final state in one View (a consistent snapshot) and
// compares it with what the driver acknowledged: an operation counts only
// if db.Update returned nil. A lost update, a write skew that breaks an
// invariant, or a double claim from a queue all show up as a failed check.
//
// # How each strategy fares, and why
//
//	             few items (hot)                    many items (cold)
//	pessimistic  waits in lock queues (its locks    pays a lock per access for
//	             taken up front, in order: no       nothing
//	             deadlocks)
//	optimistic   validation fails, whole tx redone  nearly free: snapshot reads,
//	             (wasted work grows with think time) one validation at commit
//	hybrid       first attempt optimistic, retry    = optimistic
//	             locks what the failure touched,
//	             so a transaction is retried once
//	adaptive     locks keys whose conflict          = optimistic
//	             temperature is high (MOCC)
//
// Flash sale is the guide's "queue + pessimistic" pattern: workers claim
// orders with ScanForUpdate + SkipLocked, which locks under every strategy,
// so two workers never claim the same order and never wait for each other;
// the strategy only decides how the shared stock counter is protected.
// Collaborative editing is the guide's optimistic pattern with explicit
// version checks: PutIfVersion fails with ErrVersionMismatch, and the
// editor transforms its insert position past the edits it missed
// (operational transformation: an insert at or before ours shifts ours
// right) instead of blocking a human on a lock.
//
// # The driver
//
// Run (Setup, Drive, Check) runs N workers for a duration or an op count.
// Each operation is one business transaction through db.Update with the
// strategy under test and a generous retry policy (50 attempts): a
// retryable error that outlasts it is counted as Failed. Latencies are
// kept per worker (reservoir-sampled past 128k) and merged for p50/p90/p99,
// for all operations and apart for the read-only ones (Result.Read) and the
// ones that committed a write (Result.Write), whose commits wait for the log.
// Aborts, retries, deadlocks, lock waits and merges are differences of
// db.Stats() over the run. Abort rate = attempts contention ended (a failed
// validation, a deadlock, a lock timeout, a NOWAIT refusal) / all attempts;
// a business refusal (ErrRejected: no funds, seat taken, sold out) is not an
// abort, nor a version mismatch: collaborative editing's mismatches are
// merges, the version check working as the guide intends.
//
// # Measuring
//
//	go test -race ./bench/                     # every workload × strategy, invariants
//	go test -run '^$' -bench Workload ./bench/ # BenchmarkWorkload/<workload>/<strategy>
//	go run ./bench/cmd/txkvbench -quick        # the matrix (3 runs × 100ms a cell), tables, results.json, charts
//	cd bench/peers && go run ./cmd/peers       # the same on bbolt, Badger, BuntDB, SQLite
//
// References: Kung & Robinson, "On Optimistic Methods for Concurrency
// Control" (1981); Wang & Kimura, "Mostly-Optimistic Concurrency Control"
// (VLDB 2016) for the temperature-based hybrid; Ellis & Gibbs, "Concurrency
// Control in Groupware Systems" (1989) for operational transformation;
// PostgreSQL's SELECT … FOR UPDATE SKIP LOCKED for the queue pattern.
package bench
