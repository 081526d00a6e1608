package main

import (
	"testing"

	"github.com/txkv/txkv/bench"
)

type resultLite struct {
	strategy string
	hot      int
	tput     float64
	ok       bool
}

func toResults(rs []resultLite) []bench.Result {
	var out []bench.Result
	for _, r := range rs {
		out = append(out, bench.Result{Workload: "bank", Strategy: r.strategy, HotSet: r.hot, Throughput: r.tput, InvariantOK: r.ok})
	}
	return out
}

func mustSpec(t *testing.T, name string) bench.Spec {
	t.Helper()
	s, err := bench.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
