// Package etcdkv runs txkv's transactions over etcd, for users who outgrow
// one process: several processes or machines share one transactional
// keyspace through the same *txkv.DB API.
//
//	cli, _ := clientv3.New(clientv3.Config{Endpoints: eps})
//	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: "app/"}) // a *txkv.DB
//
// It is a nested module, so etcd's dependencies stay out of the core
// library's builds, and an engine.Engine under the root package's seam
// (txkv.OpenEngine).
//
// # The keyspace
//
// Everything lives under Options.Prefix:
//
//	app/d/<key>                 data: the user's key; its value; its ModRevision is
//	                            the version GetVersioned reports and Watch delivers
//	app/l/<key>/<rev>           lock queue of <key> (reserved, not implemented yet):
//	                            one entry per request, FIFO by CreateRevision, bound
//	                            to the handle's session lease
//	app/w/<waiter>/<holder>     wait-for edges (reserved, not implemented yet),
//	                            leased, read at one revision by the elected detector
//	app/t/<txid>                transaction records: written by the commit Txn,
//	                            they decide an ambiguous commit; bound to a
//	                            records lease
//
// # Optimistic transactions (implemented)
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
//	Then the puts and deletes, and t/<txid> = committed
//
// A range compare sees keys created or changed after S but not keys deleted
// (they are gone), so every key a scan saw is also compared on its own. On
// failure the keys are read again and the first whose compare fails is
// named in a *txkv.ConflictError (a range in one with Range set); Update
// retries it. A read-only transaction read one revision and commits without
// a request. Serializable: 0 anomalies in the conformance suite, Elle and
// porcupine included; Snapshot: write skew shows, as locally.
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
// Single-key operations are single requests: Get, Put, Delete;
// CompareAndSwap is one Txn (If Value == old, or CreateRevision == 0 for
// absent); Increment is one conditional Txn per attempt (If ModRevision ==
// read). Watch is etcd's Watch from a revision: Version is the ModRevision,
// a compacted revision ends the stream with txkv.ErrCompacted.
//
// # Limits
//
// etcd allows at most --max-txn-ops (128) compares and as many operations
// per Txn, and --max-request-bytes (1.5 MiB) per request: a commit over the
// first (the transaction record takes one of each) fails with
// txkv.ErrTxnTooLarge naming the limit, before it is sent;
// a Put over the second with txkv.ErrValueTooLarge. Options.MaxTxnOps and
// MaxRequestBytes tell etcdkv a server's non-default limits.
//
// # Not yet
//
// Pessimistic, Hybrid and Adaptive transactions fail at Begin with an error
// wrapping txkv.ErrNotSupported, as do GetForShare, GetForUpdate,
// ScanForUpdate, LockRange and LockKeys (locks), and Checkpoint, Verify and
// WriteWaitForGraph on the DB; Locks, HotKeys and LastDeadlock report
// nothing. Nothing falls back silently to something weaker. Single-key
// writes (Put, Delete, CompareAndSwap, Increment) have no record: an
// ambiguous one is returned as the client's error.
package etcdkv
