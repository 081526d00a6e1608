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

// Advise applies the decision guide's flowchart (steer.Flowchart, whose
// doc lists the rules in order) to a described workload. A field out of its
// range (see Validate) is brought into it, and the first reasons, from rule
// invalid-input, say which and how.
func Advise(w Workload) Advice {
	var a Advice
	w, problems := w.clamped()
	for _, p := range problems {
		a.Reasons = append(a.Reasons, "rule invalid-input: "+p)
	}
	c, reasons := steer.Flowchart(steer.Facts(w))
	a.Strategy = choiceStrategy[c]
	a.Reasons = append(a.Reasons, reasons...)
	return a
}

// choiceStrategy maps the guide's recommendations to strategies.
var choiceStrategy = [...]Strategy{
	steer.ChoosePessimistic: Pessimistic,
	steer.ChooseOptimistic:  Optimistic,
	steer.ChooseHybrid:      Hybrid,
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
