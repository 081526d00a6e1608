// Package txkv is an embeddable, in-process, transactional key-value store
// whose concurrency control is built from first principles: a lock manager
// with shared/exclusive point and range locks, NOWAIT, SKIP LOCKED and lock
// timeouts; a wait-for graph that finds and explains deadlocks; and MVCC
// snapshots with commit-time validation — all over a durable, group-committed
// write-ahead log kept in a bbolt file.
//
// # Strategies
//
// Every transaction runs with one of four strategies; they share one commit
// protocol, so transactions of different strategies run side by side on the
// same keys correctly.
//
//	Strategy     reads                         writes             conflicts show up as
//	-----------  ----------------------------  -----------------  ---------------------------
//	Pessimistic  S lock, latest version        X lock at call     waits, deadlocks, timeouts
//	Optimistic   snapshot, recorded            buffered           ErrConflict at Commit
//	Hybrid       optimistic first; the retry locks up front what the failed attempt touched
//	             (while most first attempts fail, new ones start pessimistic; bursts probe)
//	Adaptive     optimistic, but hot keys (recent conflicts) are locked at read time (MOCC);
//	             the DB keeps whichever of MOCC, optimistic, pessimistic wastes least work
//
// The decision guide, in one paragraph: when conflicts are rare (under 5% of
// transactions) and transactions are short, Optimistic wins — nobody waits,
// and the rare loser retries. When conflicts are frequent (over 20%), or a
// retry is expensive (long transactions, side effects), Pessimistic wins —
// losers wait in a FIFO queue instead of redoing work. In between, Hybrid
// pays for locks only after a conflict has shown they are needed.
//
// # Isolation
//
// Serializable (the default) admits no anomalies: optimistic transactions
// validate both the keys and the ranges they read (no write skew, no
// phantoms); pessimistic ones hold shared locks on them. Snapshot gives
// snapshot isolation: only write-write conflicts abort, and write skew is
// possible, as in PostgreSQL's REPEATABLE READ.
//
// # A worked example
//
// A bank transfer that must never lose money, retried automatically on
// conflicts and deadlocks:
//
//	db, err := txkv.Open("bank.db", nil)
//	...
//	err = db.Update(ctx, nil, func(tx *txkv.Tx) error {
//		from, err := tx.GetForUpdate([]byte("acct/alice")) // SELECT … FOR UPDATE
//		if err != nil {
//			return err
//		}
//		to, err := tx.GetForUpdate([]byte("acct/bob"))
//		if err != nil {
//			return err
//		}
//		a, b := decode(from), decode(to)
//		if a < 100 {
//			return errInsufficientFunds // rolls back; not retried
//		}
//		if err := tx.Put([]byte("acct/alice"), encode(a-100)); err != nil {
//			return err
//		}
//		return tx.Put([]byte("acct/bob"), encode(b+100))
//	})
//
// The package's subpackages teach one algorithm each: lockmgr (the lock
// table), deadlock (the wait-for graph), mvcc (versions, the timestamp
// oracle, snapshots), wal (the log, group commit, recovery) and txn (the
// strategies and the commit protocol).
package txkv

//go:generate go run ./internal/aliasdoc/cmd/aliasdoc
