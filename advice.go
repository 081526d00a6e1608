package txkv

import "github.com/txkv/txkv/txn"

// Workload describes a workload by the decision guide's six questions:
// criticality, conflict rate, read/write ratio, transaction duration,
// distribution, and whether users can wait.
type Workload = txn.Workload

// Advice is a recommended Strategy with the reasons, each naming the rule of
// the guide's flowchart that fired.
type Advice = txn.Advice

// Advise applies the decision guide's flowchart to a described workload.
func Advise(w Workload) Advice { return txn.Advise(w) }

// Advice applies the flowchart to what this database has measured (the
// windowed conflict rate, the read/write ratio, the mean transaction time).
func (db *DB) Advice() Advice { return db.e.Advice() }

// HistogramBucket is one bucket of Stats.LockWaitHistogram.
type HistogramBucket = txn.HistogramBucket
