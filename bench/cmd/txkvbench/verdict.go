package main

import (
	"slices"

	"github.com/txkv/txkv/bench"
)

// The calls a verdict makes.
const (
	callAgree    = "agree"
	callNoise    = "within noise" // the winner's lead over the guide's choice is inside its 95% CI
	callDisagree = "DISAGREE"     // the guide's choice is measurably slower, or broke a check
	callOneRun   = "differs (1 run: noise unknown)"
	callNotRun   = "guide's choice not run"
	callNoWinner = "no strategy passed its checks"
)

// verdict compares, for one workload, the guide's recommendation with the
// strategy that measured best, and says whether the difference is more than
// the noise between repetitions.
type verdict struct {
	Workload string   `json:"workload"`
	Advised  string   `json:"advised"`
	Reasons  []string `json:"reasons"`
	// Winner has the best score: its throughput relative to the fastest
	// strategy at each hot-set size, averaged over the sizes.
	Winner string `json:"winner"`
	// LevelWinners is the strategy with the highest mean throughput at each
	// hot-set size.
	LevelWinners map[int]string `json:"level_winners"`
	// Lead is the winner's score over the guide's choice's, as a fraction of
	// the latter (0.05: 5% ahead); LeadCI is the half-width of its 95%
	// confidence interval over Pairs repetitions, each comparing the two
	// strategies' runs of one repetition (paired: they ran back to back).
	Lead   float64 `json:"lead"`
	LeadCI float64 `json:"lead_ci95"`
	Pairs  int     `json:"pairs"`
	Call   string  `json:"call"`
}

// grid is one workload's throughput: strategy → hot set → repetition → ops/s.
type grid struct {
	tput map[string]map[int]map[int]float64
	hots []int
	bad  map[string]bool // strategies with a run that failed a check
}

func gridOf(workload string, reps []rep) grid {
	g := grid{tput: map[string]map[int]map[int]float64{}, bad: map[string]bool{}}
	for _, r := range reps {
		if r.Workload != workload {
			continue
		}
		if r.Problem() != "" {
			g.bad[r.Strategy] = true
		}
		if g.tput[r.Strategy] == nil {
			g.tput[r.Strategy] = map[int]map[int]float64{}
		}
		if g.tput[r.Strategy][r.HotSet] == nil {
			g.tput[r.Strategy][r.HotSet] = map[int]float64{}
		}
		g.tput[r.Strategy][r.HotSet][r.Rep] = r.Throughput
		if !slices.Contains(g.hots, r.HotSet) {
			g.hots = append(g.hots, r.HotSet)
		}
	}
	return g
}

// judge finds a workload's winner among the strategies whose runs all passed
// their checks, and calls the difference from the guide's choice.
func judge(s bench.Spec, reps []rep) (verdict, bool) {
	a := bench.Advise(s.Profile)
	v := verdict{Workload: s.Name, Advised: a.Strategy.String(), Reasons: a.Reasons, LevelWinners: map[int]string{}}
	g := gridOf(s.Name, reps)
	if len(g.hots) == 0 {
		return v, false
	}
	scores := g.scores(g.levelBest(v.LevelWinners))
	v.Winner = winner(scores, g.bad)
	v.call(scores, g.bad)
	return v, true
}

// levelBest returns the highest mean throughput at each hot-set size, and
// records which strategy reached it.
func (g grid) levelBest(winners map[int]string) map[int]float64 {
	best := map[int]float64{}
	for _, st := range sortedKeys(g.tput) {
		for h, runs := range g.tput[st] {
			if m := meanOf(runs); m > best[h] || winners[h] == "" {
				best[h], winners[h] = m, st
			}
		}
	}
	return best
}

// scores are each strategy's score per repetition: the mean over the hot-set
// sizes of its throughput divided by the size's best mean. A repetition
// missing a size (a run that stopped the matrix) has no score.
func (g grid) scores(best map[int]float64) map[string]map[int]float64 {
	out := map[string]map[int]float64{}
	for st, byHot := range g.tput {
		out[st] = map[int]float64{}
		reps := map[int]bool{}
		for _, runs := range byHot {
			for i := range runs {
				reps[i] = true
			}
		}
		for i := range reps {
			sum, ok := 0.0, true
			for _, h := range g.hots {
				x, have := byHot[h][i]
				ok = ok && have
				if best[h] > 0 {
					sum += x / best[h]
				}
			}
			if ok {
				out[st][i] = sum / float64(len(g.hots))
			}
		}
	}
	return out
}

// winner is the strategy with the best mean score that passed its checks;
// ties go to the first name in order, so the call is reproducible.
func winner(scores map[string]map[int]float64, bad map[string]bool) string {
	best, bestScore := "", 0.0
	for _, st := range sortedKeys(scores) {
		if sc := meanOf(scores[st]); !bad[st] && len(scores[st]) > 0 && (best == "" || sc > bestScore) {
			best, bestScore = st, sc
		}
	}
	return best
}

// call decides between agree, within noise and DISAGREE: the lead is the
// mean of the paired differences of the two strategies' scores, and it is
// noise when its 95% confidence interval reaches zero.
func (v *verdict) call(scores map[string]map[int]float64, bad map[string]bool) {
	guide, ran := scores[v.Advised]
	switch {
	case v.Winner == "":
		v.Call = callNoWinner
		return
	case v.Winner == v.Advised:
		v.Call = callAgree
		return
	case !ran:
		v.Call = callNotRun
		return
	}
	var diffs, base []float64
	for i, w := range scores[v.Winner] {
		if g, ok := guide[i]; ok {
			diffs, base = append(diffs, w-g), append(base, g)
		}
	}
	v.Pairs = len(diffs)
	lead, half := meanCI(diffs)
	if b, _ := meanCI(base); b > 0 {
		v.Lead, v.LeadCI = lead/b, half/b
	}
	switch {
	case bad[v.Advised]:
		v.Call = callDisagree // the guide's choice broke a check: no noise excuses that
	case v.Pairs < 2:
		v.Call = callOneRun
	case lead-half <= 0:
		v.Call = callNoise
	default:
		v.Call = callDisagree
	}
}

func meanOf(m map[int]float64) float64 {
	if len(m) == 0 {
		return 0
	}
	sum := 0.0
	for _, x := range m {
		sum += x
	}
	return sum / float64(len(m))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
