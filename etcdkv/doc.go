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
//	app/t/<txid>                transaction records (reserved, not implemented yet):
//	                            written by the commit Txn, they decide an ambiguous
//	                            commit
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
//	Then the puts and deletes
//
// A range compare sees keys created or changed after S but not keys deleted
// (they are gone), so every key a scan saw is also compared on its own. On
// failure the keys are read again and the first whose compare fails is
// named in a *txkv.ConflictError (a range in one with Range set); Update
// retries it. A read-only transaction read one revision and commits without
// a request. Serializable: 0 anomalies in the conformance suite, Elle and
// porcupine included; Snapshot: write skew shows, as locally.
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
// first fails with txkv.ErrTxnTooLarge naming the limit, before it is sent;
// a Put over the second with txkv.ErrValueTooLarge. Options.MaxTxnOps and
// MaxRequestBytes tell etcdkv a server's non-default limits.
//
// # Not yet
//
// Pessimistic, Hybrid and Adaptive transactions fail at Begin with an error
// wrapping txkv.ErrNotSupported, as do GetForShare, GetForUpdate,
// ScanForUpdate, LockRange and LockKeys (locks), and Checkpoint, Verify and
// WriteWaitForGraph on the DB; Locks, HotKeys and LastDeadlock report
// nothing. Nothing falls back silently to something weaker. Ambiguous
// commits (the connection drops after the Txn was sent) are returned as the
// client's error, without a transaction record to decide them.
package etcdkv
