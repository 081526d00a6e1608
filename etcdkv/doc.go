// Package etcdkv runs txkv's transactions over etcd, for users who outgrow
// one process: several processes or machines share one transactional
// keyspace through the same *txkv.DB API.
//
//	cli, _ := clientv3.New(clientv3.Config{Endpoints: eps})
//	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: "app/"}) // a *txkv.DB
//
// It is a nested module, so etcd's dependencies stay out of the core
// library's builds, and an engine.Engine under the root package's seam
// (txkv.OpenEngine). Every strategy runs: Optimistic (the default) as
// one etcd Txn at commit, Pessimistic and Hybrid over lock entries in etcd
// bound to the handle's session lease, Adaptive as Hybrid; so do the
// explicit locks (see Locks, Strategies, and what is not done yet).
//
// # The keyspace
//
// Everything lives under Options.Prefix:
//
//	app/d/<key>                       data: the user's key; its value; its
//	                                  ModRevision is the version GetVersioned
//	                                  reports and Watch delivers
//	app/l/<hex key>/<s|x>/<lease>.<tx>.<n>
//	                                  point lock queue of <key>: one entry per
//	                                  request (shared or exclusive), FIFO by
//	                                  CreateRevision, put with the handle's
//	                                  session lease; its value says whether it
//	                                  is granted ({"g":true}) and, for an
//	                                  upgrade, the position it stands at
//	                                  ({"base":rev})
//	app/r/<hex start>/<s|x>/<lease>.<tx>.<n>
//	                                  range lock [start, end): the same, the end
//	                                  in the value ({"end":hex} or {"open":true})
//	app/w/<waiter>/<holder>           wait-for edges: <waiter> waits for
//	                                  <holder> (each <lease>.<tx>, as in lock
//	                                  entries); put by a wait that lasted 50 ms,
//	                                  with the waiter's session lease, deleted by
//	                                  the request that ends the wait; the value
//	                                  says what for (key, range, modes, soft,
//	                                  upgrade, label) and the waiter's age
//	app/a/<waiter>                    abort marker: the detector chose <waiter>
//	                                  as a deadlock victim; put with the
//	                                  victim's lease, the cycle in the value
//	app/e/<lease>                     the detector's election
//	                                  (concurrency.Election): one key per handle,
//	                                  the oldest leads
//	app/t/<txid>                      transaction records: written by the commit
//	                                  Txn, they decide an ambiguous commit; bound
//	                                  to a records lease
//
// Lock keys hex-encode the user key: hex has no "/", so a key's queue is
// exactly the keys under hex(key)+"/" (with raw keys, the queue of "a"
// would hold the queue of "a/b"), and hex(a)+"/" < hex(b)+"/" exactly when
// a < b, so the queues of a user range are one etcd range. <lease> is the
// session lease in hex, <tx> the transaction's ID within its handle, <n>
// numbers its requests.
//
// # Optimistic transactions
//
// A transaction's snapshot is the revision S of its first read (under
// Snapshot isolation, of its first read or write); later reads use
// WithRev(S) and are linearizable — never WithSerializable, whose follower
// reads at a future revision fail (etcd issues #11963, #12561). Writes are
// buffered (reads see them). Commit is one etcd Txn:
//
//	If   ModRevision(k) == seen          every key read        (Serializable)
//	     ModRevision([from, to)) < S+1   every scanned range   (Serializable)
//	     ModRevision(k) < S+1            every written key     (Snapshot: first committer wins)
//	     ModRevision(k) == v             every PutIfVersion
//	     CreateRevision(t/<txid>) == 0   its transaction record
//	     (and the lock compares: see Locks)
//	Then the puts and deletes, t/<txid> = committed (and the release of its
//	     lock entries)
//
// A range compare sees keys created or changed after S but not keys deleted
// (they are gone), so every key a scan saw is also compared on its own. A
// failed Txn is explained by its own Else branch, which reads back the
// compared keys (with their values), the lock queues of the written keys and
// the transaction's lock entries at the revision R where it failed
// (explain.go): the first key whose compare fails is named in a
// *txkv.ConflictError without another request (a scanned range is read
// again: a range in the error has Range set). Update retries it at once, at
// R, its reads of the compared keys served from what the Else read — it sees
// the version it lost to and spends no request on it (etcd's STM prefetches
// the same way); if that retry fails too, the next one backs off and reads
// afresh (after a backoff the values would be stale). On a hot bank of 10
// accounts (BenchmarkBank, 1-member cluster, this 2-core machine) etcdkv
// does 1.9k transfers/s with 4 workers and 1.4k with 16, against etcd's STM
// at 2.4k and 2.1k in the same runs, with fewer aborts per commit (0.57 and
// 1.8 against 0.68 and 3.3). A read-only transaction read one revision and
// commits without a request. Serializable: 0 anomalies in the conformance
// suite, Elle and porcupine included; Snapshot: write skew shows, as
// locally.
//
// # Ambiguous commits
//
// When the commit Txn fails in a way the request may have outlived — the
// connection closed, a timeout, a leader change or loss, the context
// ending — the client cannot tell whether it applied. The transaction
// record decides: etcdkv sends the same Txn again, with an Else branch
// that reads the record, or, if it is absent, creates it as aborted:
//
//	If   the commit's compares, CreateRevision(t/<txid>) == 0
//	Then the commit's writes, t/<txid> = committed
//	Else If CreateRevision(t/<txid>) == 0 Then t/<txid> = aborted Else Get(t/<txid>)
//
// and repeats it, with backoff, until the cluster answers or the
// transaction's context ends. The answer is final: the commit applied now,
// or the record is found committed (the lost request applied: Commit
// returns nil), or aborted (a *txkv.ConflictError, which Update retries).
// Sending the commit again is safe because its record compare lets it
// apply at most once; writing aborted matters because a lost request may
// still be on its way, and its other compares may pass again later (a key
// read as absent, created and deleted meanwhile): the record stops it.
// If the context ends first, or the record's lease is gone, the commit
// fails with an error wrapping txkv.ErrCommitUnknown (and the context's
// error): it may or may not have applied, and is not retryable as is.
// Errors that are etcd refusing the request (invalid, too large, a lease
// not found, compacted) are not ambiguous and are returned as before.
//
// A txid is 128 random bits from crypto/rand: unique across every process
// sharing the prefix without coordination or state a restart could reset
// (for 10^9 records, the chance of any collision is about 10^-21).
//
// Records are bound to a records lease, granted per handle with TTL
// Options.RecordTTL (10 minutes by default) and no keep-alive, and used for
// new records during the first half of its life; then a new one is
// granted. So a record lives between TTL/2 and TTL, and etcd deletes it
// with its lease: an ambiguous commit can be decided for at least TTL/2
// (5 minutes) after it was sent, far beyond any retry. The costs: one more
// compare and one more Put in every commit Txn, so a transaction may write
// at most 127 keys under the default --max-txn-ops (128); about 100 bytes
// per record, and up to TTL of commits' records live in etcd (plus their
// revisions until compaction); one LeaseGrant round trip per handle every
// TTL/2; no goroutine. Records live under t/, outside the data subspace:
// Watch and scans never see them.
//
// Get is one linearizable read. The single-key writes (Put, Delete,
// CompareAndSwap, Increment) are one-key Optimistic transactions, as
// locally: their commit Txn compares that no other transaction's lock entry
// is on the key — so a Pessimistic transaction's exclusive lock holds them
// off until it commits, where a bare etcd Put would have been overwritten
// by its commit (a lost update) — and carries a transaction record, so an
// ambiguous one is resolved like any commit. Put and Delete are one Txn
// when no lock is in the way; CompareAndSwap and Increment read, then
// commit (If ModRevision == read), and are retried on a conflict. Watch is
// etcd's Watch from a revision: Version is the ModRevision,
// a compacted revision ends the stream with txkv.ErrCompacted.
//
// # Limits
//
// etcd allows at most --max-txn-ops (128) compares and as many operations
// per Txn, and --max-request-bytes (1.5 MiB) per request: a commit over the
// first fails with txkv.ErrTxnTooLarge naming the limit, before it is sent;
// a Put over the second with txkv.ErrValueTooLarge. Options.MaxTxnOps and
// MaxRequestBytes tell etcdkv a server's non-default limits. The
// transaction record takes one compare and one operation; each lock entry
// the transaction holds, a compare (fencing); each written key no exclusive
// lock of the transaction covers, a compare that its lock queue is empty,
// and such keys together one more that no range lock is in the way. So
// with the defaults an Optimistic commit writes at most 126 keys.
//
// # Locks
//
// Pessimistic and Hybrid transactions and the explicit locks
// (GetForShare, GetForUpdate, ScanForUpdate, LockRange, LockKeys) have the
// local engine's semantics (lockmgr/doc.go): S and X, FIFO without
// barging, re-entrant requests, an S->X upgrade ahead of the waiters, and
// the same options and errors. How it is done over etcd:
//
// Sessions. Open starts a concurrency.Session whose lease (TTL
// Options.SessionTTL, default 10 s) every lock entry of the handle's
// transactions is put with; Close revokes it, removing every entry in one
// request. A process that dies holding locks loses them when the lease
// expires: at most the TTL after its last keep-alive (the multi-process
// test: the next waiter had the lock 2.4 s after a kill -9, TTL 2 s). A
// lease found gone (revoked, or expired while the process stalled) is
// replaced by a new session for later transactions.
//
// The rule. A request waits for every other transaction's entry that
// overlaps it and conflicts with its mode and is granted (a holder,
// wherever it stands) or queued ahead of it (a smaller CreateRevision; an
// upgrade stands at the position of the lock it upgrades). An upgrade - a
// request of a transaction that already holds a lock overlapping it - goes
// ahead of every waiter whose target meets a lock its transaction holds
// (the local "passes" rule: such a waiter could only deadlock with it), so
// S->X on one key waits for the other holders only. Each requester evaluates the rule itself on one
// consistent read of the entries that can overlap it (its key's queue and
// the range entries starting before its end; for a range, the point
// queues inside it too): no process hands a lock to another, so a dead
// process cannot strand one. A request the rule grants is marked granted
// by a Txn that succeeds only if no entry in what it read was created or
// changed since; of two conflicting requests the second to be marked
// therefore sees the first as a holder, whatever the rule said: etcd
// serializes the grants.
//
// A blocking request is one Txn: If its key's queue holds nothing it
// conflicts with and no range entry exists anywhere (the fast compares)
// Then put the entry granted, Else read the entries ahead and put it
// queued. Then, while the rule finds entries in its way, it watches the
// deletion of the latest of them from the read's revision (WithRev, so a
// deletion in between is not missed), in one select over that watch, its
// timer, the transaction's ctx, Close and the session's end, and reads
// again. A wait that ends without the lock (timeout, ctx, Close, deadlock)
// deletes its entry. Cost: 1 round trip uncontended; 2 when granted
// without waiting but not by the fast compares; then 1 read per deletion
// watched and 1 to mark the grant.
//
// NoWait, SkipLocked on one key and WaitTimeout(0) never queue: one Txn
// If the fast compares hold Then put the entry granted Else read the
// queue; refused, they return a *txkv.LockError at once naming the
// holders and the requests queued ahead (ErrLockNotAvailable; for
// WaitTimeout(0) ErrLockTimeout with Timeout 0). Only when the fast
// compares fail and the rule still grants (range entries elsewhere, an
// upgrade) does a second, conditional Txn put the entry.
//
// Sets of locks are queued in one request: LockKeys, the write set of an
// optimistic commit that finds a lock in its way, the first locks of a
// Hybrid retry (up to 42 requests per Txn: two reads and a put each; If
// the fast compares of all hold, Then they are put granted). All entries
// of a set share one CreateRevision, so of two transactions that
// queue their whole set at once one is ahead of the other on every key:
// they cannot deadlock, nor can a range request queue between two keys of
// a set.
//
// ScanForUpdate locks the keys it returns, exclusively, in key order, not
// the range (as locally: a range lock would serialize SKIP LOCKED
// workers). With SkipLocked each batch of candidates is claimed in one
// request: a nested Txn per key, If its queue is empty and no range entry
// exists Then put the entry granted and read the value; keys refused
// while range entries exist take the full rule one by one.
//
// Range locks (LockRange, and the shared range lock a Pessimistic
// Serializable Scan takes) are entries under r/, keyed by their start.
// What they cost: a point request reads every range entry that starts at
// or before its key (the whole r/ space up to it: ranges are expected to
// be few); while any range entry exists anywhere in the database, the
// fast compares fail for every request, so a lock granted at once takes 2
// round trips instead of 1, and an optimistic commit with a write no lock
// of its own covers is sent twice (once comparing that no range entry
// exists, once that none was created since it looked). A range request
// reads the point queues inside its range: one entry per lock held or
// requested there.
//
// Fencing. A commit includes, for every entry the transaction holds,
// CreateRevision(entry) == its revision at the grant: a transaction whose
// lease expired or was revoked (a zombie: a stalled process, a partition
// longer than the TTL) cannot commit. Nothing is written; the error is a
// *txkv.ConflictError with Reason ReasonLockLost, retryable, so Update
// runs the transaction again under a new session. A read-only transaction
// that held locks checks the same in the request that releases them. The
// compares count toward the commit's --max-txn-ops.
//
// Optimistic writes against locks. For every written key no exclusive
// lock of its own covers, an optimistic commit compares that the key's
// queue holds no other transaction's entry - shared ones included: a
// strict 2PL reader holds S on what it read - and that no other
// transaction's range entry exists. If a lock is in the way (and no read
// changed: then it is a conflict at once), the commit queues for
// exclusive locks on those keys (one request, as the local engine locks a
// write set at commit), waits at most the lock timeout and at most 1 s,
// and is sent again; past the wait it fails with a
// *txkv.ConflictError with Reason ReasonWriteLocked, retryable (not a lock
// timeout: the caller asked for no lock).
//
// Release. A commit's Txn deletes the transaction's entries with its
// writes (if they fit the operation limit; else one more request);
// Rollback deletes them in one request.
//
// # Strategies
//
// Pessimistic is strict two-phase locking, as locally: at Serializable a
// read takes S and reads the latest committed value, a scan takes S on its
// range, a write takes X, and the commit validates nothing but the
// fencing; at Snapshot reads are the snapshot's, unlocked, and a write
// takes X and then fails with an update conflict if the key changed after
// the snapshot (first updater wins). Hybrid runs its first attempt
// optimistically; when Update retries it after a conflict, a deadlock or
// a lost lock, the retry runs as Pessimistic and first queues, in one
// request, S on what the failed attempt read and X on what it wrote (as
// txn/strategy.go's hybridRetry); a retry of a locking attempt takes
// nothing first. Its wait is bounded as an optimistic commit's (1 s), and
// ends as a retryable conflict. Adaptive runs as Hybrid: etcdkv has no
// MOCC hot-key locking and no steering memory (Tx.Strategy reports Hybrid,
// or Pessimistic for a locking retry).
//
// # Timeouts and deadlocks
//
// Lock waits are bounded by WaitTimeout, else TxOptions.LockTimeout, else
// Options.LockTimeout: 5 s by default, as locally. A deadlock among
// transactions of one handle is found when a transaction starts to wait
// (the requester that closes the cycle is the victim: a
// *txkv.DeadlockError, retryable, and its entries are deleted); a deadlock
// across handles (processes) by the detector, within about 50 to 150 ms
// (next section). With the detection off (Options.DeadlockInterval =
// DeadlockDetectionOff) such a cycle ends when a member's wait times out
// (txkv.ErrLockTimeout, a *txkv.LockError; Update does not retry it, as
// locally); with txkv.Forever on every member it then waits forever. Waits
// etcdkv makes on its own (an optimistic commit's, a Hybrid retry's first
// locks) are bounded at 1 s and end as retryable conflicts, so they break
// such cycles too.
//
// Locks lists the locks this handle's transactions hold and wait for,
// without a round trip; other handles' entries are visible in etcd only.
// LastDeadlock is the last deadlock this handle's transactions lost. The
// IDs in a *LockError or *DeadlockError are transaction IDs within their
// own handle: another handle's transaction may have the same number (a
// cross-handle *DeadlockError renumbers such a one and says so in its
// label, with its handle's lease: "txn 2 (\"txn 1 of handle 3ae5…\")").
//
// # Deadlocks across handles
//
// As in TiKV, one detector holds the whole wait-for graph: the handles
// elect it, and the waiters only publish their waits. (TiKV's waiters send
// their edges to the detector leader over RPC; here etcd is the channel
// and the leader reads them.)
//
// Waiters. A lock wait that has lasted 50 ms (publishDelay: most waits end
// sooner, and those cost nothing — PostgreSQL's deadlock_timeout idea)
// puts, in one Txn, an edge w/<waiter>/<holder> for every transaction in
// its way — all of them, this handle's too, since a cycle may pass through
// several transactions of one handle — bound to its session lease, and
// starts watching its abort marker a/<waiter>. When what is in its way
// changes it updates the edges (one Txn); the request that ends the wait
// deletes them and the marker: the conditional put that marks the grant,
// or the withdrawal (timeout, ctx, Close, deadlock). So an edge is in etcd
// exactly while its waiter waits, and a process that dies takes its edges
// with its lease. Cost: nothing for a wait under 50 ms; for a longer one
// one Txn at 50 ms, a watch, and the deletes ride on the request that ends
// it anyway.
//
// The detector. Every handle campaigns on e/ (concurrency.Election, under
// its session: a goroutine of the handle; Close resigns and waits for it).
// The leader reads the whole w/ subspace every Options.DeadlockInterval
// (100 ms by default; only if w/ changed) with one range Get, builds
// package deadlock's graph and looks for cycles. A cycle read at revision R
// existed at R: one range read is one MVCC snapshot of every edge, each
// edge stands only while its waiter waits, and a waiting transaction
// releases nothing (strict 2PL), so every holder on the cycle still held,
// at R, what its waiter waits for; and a deadlock does not resolve itself,
// so it still stands unless a member's wait ended otherwise (a timeout, a
// ctx). The detector chooses the youngest member — the largest age, the
// start of its first attempt (Update keeps it across retries, so a
// transaction retried after losing grows older, not younger; clocks of
// different machines may disagree: see Not yet) — and puts its abort marker
// with the victim's lease and the cycle as its value, in a Txn that
// succeeds only if every edge of the cycle still has the ModRevision read
// at R and no marker exists: a cycle a timeout broke meanwhile aborts
// nobody, and a victim is aborted once. The victim's wait sees the marker
// in its select, withdraws its entry (deleting its edges and the marker),
// and fails with a retryable *txkv.DeadlockError that describes the cycle
// (keys, modes, who waits for whom); its locks are released as for a local
// victim, and Update retries it.
//
// Failover. The election key is bound to the handle's session lease: if the
// detector's process dies or loses etcd, its key goes with the lease
// (within Options.SessionTTL) and the next candidate leads; a handle whose
// session ended campaigns again under its next one (which its next lock
// request starts; the campaign starts none, so that Close never waits for a
// grant). Detection resumes at the new leader's next round; no state is
// lost, since the edges are in etcd. Measured in the tests (-race, one
// member and three): a cycle of two or three handles, or of two processes,
// is found 70 to 160 ms after it formed; after a Close or a revoked session
// the next leader is elected within 6 ms (a dead process: within
// Options.SessionTTL).
//
// Costs. Per handle: one election key and a watch on its predecessor's.
// At the leader: a watch on w/, and one range read of w/ in a round only
// if an edge changed since the last one (or it found a cycle): none while
// nobody waits long. Options.DeadlockInterval = DeadlockDetectionOff
// turns it off for a handle: it neither publishes its waits nor stands;
// give all handles of a database the same setting.
//
// # Not yet
//
// The detector's round reads the whole w/ subspace: fine for thousands of
// long waits, not for millions (TiKV shards nothing either, but keeps the
// graph in memory). A cycle through a handle that turned the detection off
// is not found. Ages are wall-clock times of the waiters' machines: clock
// skew between machines can make an older transaction the victim (still one
// victim, still a real cycle). Checkpoint, Verify and WriteWaitForGraph on
// the DB fail with an error wrapping txkv.ErrNotSupported; HotKeys reports
// nothing. Nothing falls back silently to something weaker.
package etcdkv
