// Package txn is txkv's transaction engine: the transaction lifecycle, the
// strategies, the one commit protocol they share, Update's retries, the
// single-key operations and checkpoint orchestration. It wires together the
// lock table (lockmgr), the versioned store (mvcc) and the log (wal).
//
// # The commit protocol
//
// Every transaction, whatever its strategy, commits the same way. That is
// what lets a pessimistic and an optimistic transaction touch the same keys
// safely: each sees the other's locks and versions.
//
//	Tx.Commit
//	│
//	├─1─ lock the write set X, in key order   (lockmgr; waits obey timeout,
//	│                                           ctx and deadlock detection)
//	├─2─ ts = oracle.Next()                   ◀── the serialization point
//	├─3─ validate (optimistic reads only):
//	│      Serializable: every key read has no version newer than the
//	│        snapshot and is not X-locked by another tx; every scanned
//	│        range likewise (phantoms)
//	│      Snapshot: no written key has a version newer than the snapshot
//	│      failure ─▶ ts done as aborted, release, *ConflictError
//	├─4─ wal.Enqueue({ts, id, ops})           the group-commit queue
//	├─5─ mvcc.Install(ts, writes); Done(ts); release every lock
//	│      ─▶ visible: the read watermark advances, waiters are granted
//	├─6─ wait until the record's batch is durable ─▶ the durable watermark
//	└─── wait until the read watermark reaches ts (read-your-writes); return
//
// Why the order (Silo, SOSP 2013, §4.2): the write locks are taken before
// the timestamp, so any transaction with a smaller timestamp that wrote a key
// we read either is already installed (we see its newer version) or still
// holds its X lock (we see the lock). Either way validation catches it, and
// the history is equivalent to the serial order of commit timestamps.
// Versions are installed before locks are released, so a strict-2PL reader
// that gets a lock always reads the newest version.
//
// # Visible before durable: early lock release
//
// Steps 4–6 release the locks, and make the writes visible, before the
// fsync. The alternative — wait for durability, then install and release —
// makes every conflicting transaction queue behind the disk, and a retry
// begun during the winner's fsync reads the old version and is doomed (on a
// hot counter, Updates then exhaust their retries). This is early lock release (Johnson et al., Aether, VLDB 2010;
// Graefe et al., controlled lock violation, SIGMOD 2013); InnoDB commits in
// memory before its log flush, and Silo acknowledges by durable epoch.
//
// Two watermarks say what a reader may see and what it may report:
//
//	ts:         41    42    43    44    45
//	installed:  yes   yes   yes   yes   no      ReadTS    = 44  (visible)
//	durable:    yes   yes   no    yes   -       DurableTS = 42  (survives a crash)
//
// The invariant: nothing that depends on a commit that is not durable yet is
// acknowledged before that commit is durable.
//
//   - A read-write transaction that read or overwrote such a version could
//     only see it after it was installed, so after its record was enqueued.
//     Its own record is enqueued later: same batch or a later one, and
//     batches become durable in order (a failed batch fails every later
//     one). Its own wait in step 6 covers its dependencies.
//   - A reader acknowledges what it read when it returns: a View, DB.Get,
//     an Update that wrote nothing or whose callback failed, a
//     CompareAndSwap that did not swap. Each remembers the newest version it
//     saw — a value or a tombstone that hid a key (mvcc's Snapshot.Seen) —
//     and waits for the durable watermark to reach it before it returns
//     (Tx.settleLocked). A version at or below the watermark, the usual case,
//     costs one atomic load. Values a transaction returns before its Commit
//     are provisional, as under any isolation level: Commit is the
//     acknowledgement.
//   - Watch releases a commit to watchers only once it is at or below the
//     durable watermark.
//   - A checkpoint moves into the base only versions at or below the durable
//     watermark, and GC never drops a version unless what supersedes it is
//     durable (mvcc's GCWatermark): otherwise a crash could leave half a
//     transaction in the base.
//   - If a log write or fsync fails, the log is poisoned: every committer
//     still waiting, and every reader that saw a version above the durable
//     watermark, gets ErrLogFailed; writes are refused until the database is
//     reopened. Reads of durable data still work. Nothing installed but not
//     durable is ever reported.
//
// Under SyncNone "durable" means written to the file (it survives the
// process, not the machine); the rules are the same.
//
// # Retries that cannot starve
//
// Update retries a conflict or a deadlock, and plans the retry:
//
//   - No doomed retries: a conflict records the commit timestamp it lost to
//     (ConflictError), and the retry waits until that commit is visible
//     before it takes its snapshot, so it never reads the old version again.
//   - Escalation: past RetryPolicy.EscalateAfter failed attempts (by default
//     2 on a file, 8 in memory: see EscalateAfterDurable), the retry first
//     takes, in key order, the locks the failed attempt needed — X on the
//     keys it wrote, on the key a deadlock victim was waiting for and on the
//     key a Snapshot write lost (first-updater-wins), S on the keys it read
//     (for a pessimistic attempt: the keys it held locks on), and whatever
//     earlier escalated attempts locked — and re-opens
//     its snapshot above the newest version of those keys, so its reads of
//     them stay current until commit. It keeps its strategy, and carries its
//     first attempt's ID as its age, so the lock manager's victim choice
//     (the youngest by age) makes it the winner against newer transactions.
//     A transaction that keeps losing on the same keys queues for them, FIFO,
//     instead of losing again (BenchmarkCounter in bench/ counts the failed
//     Updates; the README has its numbers). Ages start only with
//     escalation: given to every retry, they make each victim's retry win
//     and kill a newcomer, which retries and kills the next — a chain of
//     deadlocks instead of one.
//   - A victim stays a victim: after a deadlock or a conflict ends a
//     transaction, every later call of it returns that error, so an Update
//     whose callback dropped the first one still sees a retryable error.
//   - On a file, Hybrid and Adaptive, when they run a transaction
//     pessimistically, read a key written in about the last second
//     (recentWrites: its newest version is above the read watermark of a
//     second ago) with an X lock rather than S: two readers that both hold S
//     and both upgrade to X are the classic conversion deadlock, and on a
//     file they come in storms (see readMode for why not in memory). Plain
//     Pessimistic stays strict 2PL.
//
// # Strategies and isolation
//
// What each strategy changes is one row of the strategy table in
// strategy.go (policies): how a new attempt runs (a runMode: locking,
// optimistic, or optimistic with hot keys locked), whether its pessimistic
// reads of keys being written take X, what its retry runs as and locks
// first, and which memory in package steer learns from it. Reads, writes,
// scans and validation ask only the attempt's runMode. The table below is
// what those rows and modes do under each isolation level.
//
//	             Serializable                          Snapshot
//	Pessimistic  Get: S lock, latest version           snapshot reads, no read locks
//	             Put/Delete: X lock at call time        X lock at call time; a key
//	             Scan: range S lock (no phantoms)       changed since the snapshot:
//	             commit: no validation                  ErrConflict (first updater wins)
//	Optimistic   snapshot reads, recorded; buffered    as Serializable, but commit checks
//	             writes; commit validates reads and     only the write set (first
//	             ranges                                 committer wins; write skew possible)
//	Hybrid       attempt 1 optimistic; after a conflict the retry runs pessimistically
//	             and first locks, in key order, the keys attempt 1 read (S) and wrote (X);
//	             while over 1 in 10 first attempts recently failed, start pessimistic
//	Adaptive     optimistic, but a key whose conflict temperature reached the threshold
//	             is locked at read time (X if its conflicts were read-modify-writes);
//	             measured per DB: falls back to plain optimistic or pessimistic when
//	             those waste less per commit
//
// # Hybrid's memory
//
// Trying optimistically first pays only while first attempts usually
// succeed. A failed one costs its own work, and its pessimistic retry holds
// its locks for a whole transaction, failing other first attempts. So the
// DB keeps a moving average of how Hybrid's first attempts end (package
// steer, steer.Hybrid): over 10%, new Hybrid Updates start pessimistic — the
// fallback, without the failed attempt before it. While pessimistic, every
// so often (512 … 65536 Updates, spacing out while bursts fail) a burst of 48
// Updates starts optimistically; if under 10% of its first attempts fail,
// Hybrid starts optimistic again. It is "try optimistic, fall back" at the
// level of the workload: without it, on one hot key Hybrid runs nearly every
// transaction twice.
//
// # Adaptive (MOCC)
//
// Mostly-optimistic concurrency control (Wang & Kimura, VLDB 2016) keeps a
// temperature per record: a count of recent validation failures on it,
// decaying over time. Cold records are read optimistically; hot ones are
// locked when read, so the transactions that keep colliding on them queue
// instead of retrying.
//
//	validation fails on k ──▶ temperature[hash(k)] += 1 (and rmw += 1 if k was written)
//	Get(k): temperature(k) >= AdaptiveThreshold ? lock k (X if mostly rmw, else S)
//	                                            : snapshot read, validated at commit
//	every 500 ms of silence halves a temperature
//	a failed attempt's retry first locks, in key order, its keys that are hot
//	now — X those it wrote — MOCC's retrospective lock list: hot-key locks of
//	retries never deadlock with each other, and never upgrade S to X
//
// AdaptiveThreshold's ends are the test oracle: AdaptiveAlways locks every read (exactly
// Pessimistic), AdaptiveNever none (exactly Optimistic). Between 5% and 20%
// windowed conflicts, a conflicted attempt is retried as Hybrid retries
// (everything it touched locked first); below 5%, with the retrospective
// lock list.
//
// Whether locking hot keys pays depends on the machine: with few cores and
// short transactions in memory, a retry costs microseconds while a blocked
// read-time lock costs a park, a wake-up and a deadlock-graph update, and
// once a queue forms on a hot key, FIFO handoff keeps it (a lock convoy:
// every transaction waits). So between the oracle ends the DB measures
// (package steer, steer.Adaptive): it runs MOCC, and while MOCC wastes over 5% per
// commit (failed attempts plus lock waits) it probes, a few hundred commits
// at a time, plain optimistic — and pessimistic when the windowed conflict
// rate is over the guide's 20% — keeping whichever wastes least. The guide's
// 20% is advice put to the test rather than obeyed, because the window
// counts deadlock victims: once pessimistic transactions run, their own S→X
// upgrade deadlocks keep the rate high. Measurements come from Update;
// transactions begun with Begin run the current choice.
//
// # Which locks validation counts
//
// Silo's "not locked by another transaction" check assumes locks exist only
// during commit. Strict-2PL transactions hold theirs for their whole life,
// and a holder that has not begun to commit will take a later timestamp
// than the validator: it serializes after it, and its lock is no conflict.
// So validation counts only holders in the committing set — those that have
// passed the point just before oracle.Next — which is safe because the
// oracle's mutex orders a holder's Next before the validator's.
//
// # Change streams
//
// Watch (package changefeed) delivers committed writes in timestamp order. Commits
// finish out of order, so each one is published to the watch hub between
// install and Done: every committed ts at or below the durable watermark has
// then reached the hub, which releases events in order up to it, with no
// gaps, and only durable ones. Recent events stay in a ring; a file database's watcher that falls
// behind the ring catches up from the log's retained tail.
//
// Explicit locks (GetForShare, GetForUpdate, ScanForUpdate, LockRange,
// LockKeys) are real locks under every strategy. A key read under a lock
// needs no validation: under Serializable it is read at its latest version,
// and the lock keeps it so until commit.
//
// Read-only transactions read at the read watermark — a prefix of the serial
// order of commit timestamps — and never validate; they wait only if they saw
// a version that is not durable yet. View recycles its
// Tx when it returns, and Update each attempt's (view.go, recycle): a point
// read's transaction then allocates nothing, an Update attempt one object
// less, and the garbage collector, each of whose cycles marks the whole
// memtable, runs far less often. A Tx is recycled only when nothing but
// View or Update can reach it — no context AfterFunc pending, not listed by
// a Close — and the root package's handles remember the ID they were issued
// for, so a handle kept past its View or Update fails with ErrTxDone
// instead of acting in whichever transaction reuses the object.
//
// # Errors that end a transaction
//
// A conflict, a deadlock (this transaction was the victim), a cancelled
// context, a closed DB and a failed log write roll the transaction back.
// NOWAIT refusals and lock timeouts fail only the request: the transaction
// keeps its other locks and stays usable (InnoDB's default), so the caller
// can try something else or roll back.
//
// # Where to read
//
// A transaction's life, file by file:
//
//	db.go          Open, Close, the running set; the lock manager's and the log's options
//	options.go     Options (every option, its default and its check), TxOptions, RetryPolicy
//	tx.go          Begin: binding to the context, the reader, failure and release
//	state.go       the lifecycle: active → committing → released → ended
//	strategy.go    the strategy table: how an attempt runs, what its retry locks first
//	ops.go         Get, Put, Delete, Scan as the attempt's runMode prescribes
//	lockops.go     explicit locks: GetForShare, GetForUpdate, ScanForUpdate, LockRange
//	commit.go      the commit protocol and the committing set
//	update.go      Update: retries, backoff, escalation
//	retryplan.go   what a failed attempt hands the next one, and how it is carried out
//	view.go        View, and the recycling of View's and Update's transactions
//	single.go      one-key operations: Get, Put, CompareAndSwap, Increment
//	steering.go    the bridge to package steer (Hybrid's and Adaptive's memories)
//	stats.go, hotkeys.go, deadlocks.go, advisor.go   what the DB reports about itself
//	checkpoint.go  the background checkpointer
//	watch.go       the bridge to package changefeed (Watch)
//
// # References
//
// Kung & Robinson, "On Optimistic Methods for Concurrency Control", TODS 1981;
// Tu et al., "Speedy Transactions in Multicore In-Memory Databases" (Silo),
// SOSP 2013; Wang & Kimura, "Mostly-Optimistic Concurrency Control" (MOCC),
// VLDB 2016; Berenson et al., "A Critique of ANSI SQL Isolation Levels",
// SIGMOD 1995; Johnson et al., "Aether: A Scalable Approach to Logging",
// VLDB 2010; Graefe et al., "Controlled Lock Violation", SIGMOD 2013;
// Gray & Reuter, Transaction Processing, ch. 7–8; Badger txn.go
// (the oracle); PostgreSQL's REPEATABLE READ "could not serialize access due
// to concurrent update".
package txn
