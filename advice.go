package txkv

import (
	"github.com/txkv/txkv/engine"
	"github.com/txkv/txkv/txn"
)

// Workload describes a workload by the decision guide's six questions:
// criticality, conflict rate, read/write ratio, transaction duration,
// distribution, and whether users can wait.
//
// Fields (txn.Workload):
//
//	Critical       bool          // is the data critical (money, medical records): must a wrong write never happen?
//	ConflictRate   float64       // share of transactions that touch data another is changing (0..1)
//	ReadWriteRatio float64       // reads per write
//	TxDuration     time.Duration // how long a transaction runs, user think time included
//	Distributed    bool          // do transactions span processes or machines?
//	UsersCanWait   bool          // may a user be kept waiting for a lock?
type Workload = txn.Workload

// Advice is a recommended Strategy with the reasons, each naming the rule of
// the guide's flowchart that fired.
//
// Fields (txn.Advice):
//
//	Strategy Strategy
//	Reasons  []string
type Advice = txn.Advice

// Advise applies the decision guide's flowchart to a described workload.
func Advise(w Workload) Advice { return txn.Advise(w) }

// Advice applies the flowchart to what this database has measured (the
// windowed conflict rate, the read/write ratio, the mean transaction time).
// Over another engine without engine.Inspector it advises for a distributed
// workload and nothing measured.
func (db *DB) Advice() Advice {
	if db.x != nil {
		if in, ok := db.x.(engine.Inspector); ok {
			return in.Advice()
		}
		return Advise(Workload{Distributed: true})
	}
	return db.e.Advice()
}

// HistogramBucket is one bucket of Stats.LockWaitHistogram.
//
// Fields (txn.HistogramBucket):
//
//	UpperBound time.Duration // the last bucket's bound is the largest Duration
//	Count      uint64
type HistogramBucket = txn.HistogramBucket
