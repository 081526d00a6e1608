package steer

import (
	"fmt"
	"time"
)

// Choice is the decision guide's recommendation, in the guide's own terms
// (the engine maps it to its Strategy values).
type Choice uint8

const (
	ChooseNone        Choice = iota // no rule decided (never returned by Flowchart)
	ChoosePessimistic               // lock what you read and write
	ChooseOptimistic                // validate at commit, retry the loser
	ChooseHybrid                    // optimistic first, pessimistic on retry
)

// Facts are the decision guide's six questions about a workload, already in
// range (the engine validates and clamps them).
type Facts struct {
	Critical       bool          // must a wrong write never happen (money, medical records)?
	ConflictRate   float64       // share of transactions touching data another is changing, in [0, 1]
	ReadWriteRatio float64       // reads per write, ≥ 0
	TxDuration     time.Duration // user think time included, ≥ 0
	Distributed    bool          // do transactions span processes or machines?
	UsersCanWait   bool          // may a user be kept waiting for a lock?
}

// The flowchart's thresholds, besides LowConflict and HighConflict.
const (
	LongTransaction = time.Second // longer than this: user think time is inside the transaction
	ReadHeavy       = 10.0        // reads per write above which optimistic validation is cheap
	WriteHeavy      = 5.0         // reads per write below which critical data is locked
)

// Flowchart applies the decision guide's rules, in order; the first that
// decides wins and later ones may add reasons, each naming its rule:
//
//	critical-writes   critical data, write-heavy (< 5 reads per write) → Pessimistic
//	long-transaction  > 1s and users cannot wait: never hold locks across think time → Optimistic
//	high-conflict     conflict rate > 20% → Pessimistic (queue instead of retry storms)
//	moderate-conflict 5–20% → Hybrid (optimistic first, lock on retry)
//	read-heavy        ≥ 10 reads per write → Optimistic
//	low-conflict      < 5% → Optimistic
//	distributed       (note) distributed transactions favour version checks over held locks
func Flowchart(f Facts) (Choice, []string) {
	var c Choice
	var reasons []string
	decide := func(x Choice, rule, why string, args ...any) {
		if c == ChooseNone {
			c = x
		}
		reasons = append(reasons, "rule "+rule+": "+fmt.Sprintf(why, args...))
	}
	if f.Critical && f.ReadWriteRatio < WriteHeavy {
		decide(ChoosePessimistic, "critical-writes", "critical data with %.3g reads per write: correctness first, lock what you change", f.ReadWriteRatio)
	}
	if f.TxDuration > LongTransaction && !f.UsersCanWait {
		decide(ChooseOptimistic, "long-transaction", "transactions of %v that users cannot wait on: hold no locks across think time, check versions at commit", f.TxDuration)
	}
	switch {
	case f.ConflictRate > HighConflict:
		decide(ChoosePessimistic, "high-conflict", "conflict rate %.0f%% > 20%%: retries would storm; queue on locks", f.ConflictRate*100)
	case f.ConflictRate >= LowConflict:
		decide(ChooseHybrid, "moderate-conflict", "conflict rate %.0f%% in 5–20%%: optimistic first, pessimistic on retry", f.ConflictRate*100)
	case f.ReadWriteRatio >= ReadHeavy:
		decide(ChooseOptimistic, "read-heavy", "%.3g reads per write and conflict rate %.1f%%: validation is cheap, locks would only cost", f.ReadWriteRatio, f.ConflictRate*100)
	default:
		decide(ChooseOptimistic, "low-conflict", "conflict rate %.1f%% < 5%%: the rare loser retries", f.ConflictRate*100)
	}
	if f.Distributed {
		reasons = append(reasons, "rule distributed: locks held across machines are costly and outlive crashes; prefer version checks where the rules above allow")
	}
	return c, reasons
}
