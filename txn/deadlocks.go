package txn

import (
	"sync"
	"time"

	"github.com/txkv/txkv/lockmgr"
)

// DeadlockRecord is one deadlock the DB resolved: its sequence number
// (1, 2, … since Open), when it was found, and the report.
type DeadlockRecord struct {
	Seq  uint64
	Time time.Time
	Err  *lockmgr.DeadlockError
}

// recentDeadlocksKept bounds the history: a watcher that reads it ten times
// a second sees every deadlock of a storm below 320 a second.
const recentDeadlocksKept = 32

// deadlockLog keeps the most recent deadlock reports in a ring, so a
// watcher (package txkvhttp) can list every deadlock since it last looked,
// not only the latest one.
type deadlockLog struct {
	// mu protects ring and seq; held for a copy, never across a callback.
	mu   sync.Mutex
	ring [recentDeadlocksKept]DeadlockRecord
	seq  uint64 // the Seq of the newest record
}

func (l *deadlockLog) add(e *lockmgr.DeadlockError, now time.Time) {
	l.mu.Lock()
	l.seq++
	l.ring[l.seq%recentDeadlocksKept] = DeadlockRecord{Seq: l.seq, Time: now, Err: e}
	l.mu.Unlock()
}

// since returns the kept records with Seq > after, oldest first.
func (l *deadlockLog) since(after uint64) []DeadlockRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	first := max(after+1, l.seq+1-min(l.seq, recentDeadlocksKept))
	var out []DeadlockRecord
	for s := first; s <= l.seq; s++ {
		out = append(out, l.ring[s%recentDeadlocksKept])
	}
	return out
}

// RecentDeadlocks returns the deadlocks found since the one numbered after
// (0: all that are kept), oldest first: at most the last 32. A gap between
// after and the first Seq returned counts deadlocks no longer kept.
func (db *DB) RecentDeadlocks(after uint64) []DeadlockRecord { return db.deadlocks.since(after) }
