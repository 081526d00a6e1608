package txn

import (
	"fmt"
	"math"
	"time"

	"github.com/txkv/txkv/steer"
)

// Workload describes a workload by the decision guide's six questions.
type Workload struct {
	Critical       bool          // is the data critical (money, medical records): must a wrong write never happen?
	ConflictRate   float64       // share of transactions that touch data another is changing (0..1)
	ReadWriteRatio float64       // reads per write
	TxDuration     time.Duration // how long a transaction runs, user think time included
	Distributed    bool          // do transactions span processes or machines?
	UsersCanWait   bool          // may a user be kept waiting for a lock?
}

// Advice is the guide's recommendation: a strategy and the reasons, each
// naming the rule of the flowchart that fired.
type Advice struct {
	Strategy Strategy
	Reasons  []string
}

// The flowchart's thresholds.
const (
	longTransaction = time.Second // longer than this: user think time is inside the transaction
	readHeavy       = 10.0        // reads per write above which optimistic validation is cheap
	writeHeavy      = 5.0         // reads per write below which critical data is locked
)

// Validate reports the first field of w outside its range: ConflictRate in
// [0, 1], ReadWriteRatio and TxDuration not negative (and no NaN or
// infinity). The error wraps ErrInvalidOption.
func (w Workload) Validate() error {
	_, problems := w.clamped()
	if len(problems) > 0 {
		return fmt.Errorf("%w: Workload.%s", ErrInvalidOption, problems[0])
	}
	return nil
}

// clamped returns w with every field brought into its range, and one line per
// field that was not ("ConflictRate 5 is outside [0, 1]; taken as 1").
func (w Workload) clamped() (Workload, []string) {
	var problems []string
	fix := func(name string, v, lo, hi float64, rng string) float64 {
		c := math.Min(math.Max(v, lo), hi)
		if math.IsNaN(v) {
			c = lo
		}
		if c != v {
			problems = append(problems, fmt.Sprintf("%s %v is outside %s; taken as %v", name, v, rng, c))
		}
		return c
	}
	w.ConflictRate = fix("ConflictRate", w.ConflictRate, 0, 1, "[0, 1] (a share: 0.05 is 5%)")
	w.ReadWriteRatio = fix("ReadWriteRatio", w.ReadWriteRatio, 0, math.MaxFloat64, "[0, ∞)")
	if w.TxDuration < 0 {
		problems = append(problems, fmt.Sprintf("TxDuration %v is negative; taken as 0", w.TxDuration))
		w.TxDuration = 0
	}
	return w, problems
}

// Advise applies the decision guide's flowchart to a described workload.
// The rules, in order (the first that decides wins; later ones may add
// reasons):
//
//	critical-writes   critical data, write-heavy (< 5 reads per write) → Pessimistic
//	long-transaction  > 1s and users cannot wait: never hold locks across think time → Optimistic
//	high-conflict     conflict rate > 20% → Pessimistic (queue instead of retry storms)
//	moderate-conflict 5–20% → Hybrid (optimistic first, lock on retry)
//	read-heavy        ≥ 10 reads per write → Optimistic
//	low-conflict      < 5% → Optimistic
//	distributed       (note) distributed transactions favour version checks over held locks
//
// A field out of its range (see Validate) is brought into it, and the first
// reasons, from rule invalid-input, say which and how.
func Advise(w Workload) Advice {
	var a Advice
	w, problems := w.clamped()
	for _, p := range problems {
		a.Reasons = append(a.Reasons, "rule invalid-input: "+p)
	}
	decide := func(s Strategy, rule, why string, args ...any) {
		if a.Strategy == StrategyDefault {
			a.Strategy = s
		}
		a.Reasons = append(a.Reasons, "rule "+rule+": "+fmt.Sprintf(why, args...))
	}
	if w.Critical && w.ReadWriteRatio < writeHeavy {
		decide(Pessimistic, "critical-writes", "critical data with %.3g reads per write: correctness first, lock what you change", w.ReadWriteRatio)
	}
	if w.TxDuration > longTransaction && !w.UsersCanWait {
		decide(Optimistic, "long-transaction", "transactions of %v that users cannot wait on: hold no locks across think time, check versions at commit", w.TxDuration)
	}
	switch {
	case w.ConflictRate > steer.HighConflict:
		decide(Pessimistic, "high-conflict", "conflict rate %.0f%% > 20%%: retries would storm; queue on locks", w.ConflictRate*100)
	case w.ConflictRate >= steer.LowConflict:
		decide(Hybrid, "moderate-conflict", "conflict rate %.0f%% in 5–20%%: optimistic first, pessimistic on retry", w.ConflictRate*100)
	case w.ReadWriteRatio >= readHeavy:
		decide(Optimistic, "read-heavy", "%.3g reads per write and conflict rate %.1f%%: validation is cheap, locks would only cost", w.ReadWriteRatio, w.ConflictRate*100)
	default:
		decide(Optimistic, "low-conflict", "conflict rate %.1f%% < 5%%: the rare loser retries", w.ConflictRate*100)
	}
	if w.Distributed {
		a.Reasons = append(a.Reasons, "rule distributed: locks held across machines are costly and outlive crashes; prefer version checks where the rules above allow")
	}
	return a
}

// Advice applies Advise to what this database measured: the windowed
// conflict rate, the read/write ratio and the mean transaction duration.
// Criticality, distribution and whether users can wait cannot be measured:
// they are taken as false, false and true.
func (db *DB) Advice() Advice {
	s := db.Stats()
	a := Advise(Workload{ConflictRate: s.ConflictRate, ReadWriteRatio: s.ReadWriteRatio,
		TxDuration: s.MeanTxTime, UsersCanWait: true})
	a.Reasons = append(a.Reasons, fmt.Sprintf("measured: conflict rate %.1f%%, %.3g reads per write, mean transaction %v",
		s.ConflictRate*100, s.ReadWriteRatio, s.MeanTxTime))
	return a
}
