package main

import (
	"testing"

	"github.com/txkv/txkv/bench"
)

// runLite is one synthetic run of the bank workload.
type runLite struct {
	strategy string
	hot      int
	rep      int
	tput     float64
	ok       bool
}

func toReps(rs []runLite) []rep {
	var out []rep
	for _, r := range rs {
		out = append(out, rep{bench.Result{Workload: "bank", Strategy: r.strategy, HotSet: r.hot, Throughput: r.tput,
			InvariantOK: r.ok}, r.rep})
	}
	return out
}

// pair returns, for each repetition, one run of each strategy at two hot-set
// sizes, with the throughputs given per repetition.
func pair(a, b string, tputA, tputB []float64) []runLite {
	var rs []runLite
	for i := range tputA {
		for _, hot := range []int{10, 100} {
			rs = append(rs, runLite{a, hot, i, tputA[i], true}, runLite{b, hot, i, tputB[i], true})
		}
	}
	return rs
}

func mustSpec(t *testing.T, name string) bench.Spec {
	t.Helper()
	s, err := bench.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
