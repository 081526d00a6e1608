package txn

import (
	"strings"
	"testing"
	"time"
)

// The decision guide's matrix: eight scenarios and the strategy the guide
// recommends for each, with the rule that must decide it.
func TestAdviseDecisionMatrix(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		name string
		w    Workload
		want Strategy
		rule string
	}{
		{"banking transfer", Workload{Critical: true, ConflictRate: 0.30, ReadWriteRatio: 1, TxDuration: 5 * ms, UsersCanWait: true}, Pessimistic, "critical-writes"},
		{"e-commerce inventory", Workload{ConflictRate: 0.02, ReadWriteRatio: 10, TxDuration: 10 * ms, UsersCanWait: true}, Optimistic, "read-heavy"},
		{"ticket booking", Workload{ConflictRate: 0.15, ReadWriteRatio: 5, TxDuration: 200 * ms, UsersCanWait: true}, Hybrid, "moderate-conflict"},
		{"social likes", Workload{ConflictRate: 0.01, ReadWriteRatio: 100, TxDuration: 2 * ms, UsersCanWait: false}, Optimistic, "read-heavy"},
		{"medical records", Workload{Critical: true, ConflictRate: 0.05, ReadWriteRatio: 1, TxDuration: 500 * ms, UsersCanWait: true}, Pessimistic, "critical-writes"},
		{"content management", Workload{ConflictRate: 0.03, ReadWriteRatio: 20, TxDuration: 5 * time.Minute, UsersCanWait: false}, Optimistic, "long-transaction"},
		{"flash sale", Workload{ConflictRate: 0.60, ReadWriteRatio: 2, TxDuration: 5 * ms, UsersCanWait: true}, Pessimistic, "high-conflict"},
		{"collaborative editing", Workload{ConflictRate: 0.10, ReadWriteRatio: 3, TxDuration: 30 * time.Second, UsersCanWait: false}, Optimistic, "long-transaction"},
	} {
		a := Advise(c.w)
		if a.Strategy != c.want {
			t.Errorf("%s: Advise = %v, want %v (reasons %q)", c.name, a.Strategy, c.want, a.Reasons)
			continue
		}
		if len(a.Reasons) == 0 || !strings.HasPrefix(a.Reasons[0], "rule "+c.rule+":") {
			t.Errorf("%s: first reason %q, want rule %s", c.name, a.Reasons, c.rule)
		}
	}
}

func TestAdviseDistributedAddsReason(t *testing.T) {
	a := Advise(Workload{ConflictRate: 0.01, Distributed: true})
	last := a.Reasons[len(a.Reasons)-1]
	if a.Strategy != Optimistic || !strings.HasPrefix(last, "rule distributed:") {
		t.Fatalf("got %v %q", a.Strategy, a.Reasons)
	}
}

func TestAdviseThresholdEdges(t *testing.T) {
	for _, c := range []struct {
		rate float64
		want Strategy
	}{{0, Optimistic}, {0.0499, Optimistic}, {0.05, Hybrid}, {0.20, Hybrid}, {0.2001, Pessimistic}, {1, Pessimistic}} {
		if got := Advise(Workload{ConflictRate: c.rate, ReadWriteRatio: 1}).Strategy; got != c.want {
			t.Errorf("rate %v: %v, want %v", c.rate, got, c.want)
		}
	}
}
