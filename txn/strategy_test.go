package txn

import "testing"

// Every strategy of the enum has a complete row, and nothing else has one.
func TestStrategyTable(t *testing.T) {
	if len(policies) != numStrategies {
		t.Fatalf("policies has %d rows, numStrategies is %d", len(policies), numStrategies)
	}
	for s := StrategyDefault; int(s) < numStrategies+1; s++ {
		p := policy{}
		if int(s) < len(policies) {
			p = policies[s]
		}
		complete := p.start != nil && p.retry != nil
		if complete != s.valid() {
			t.Errorf("%v: row complete %v, valid %v", s, complete, s.valid())
		}
	}
	if !Adaptive.valid() || StrategyDefault.valid() || Strategy(-1).valid() {
		t.Fatal("valid disagrees with the enum")
	}
}

// What Tx.Strategy reports for each way an attempt runs.
func TestRunModeStrategy(t *testing.T) {
	for m, want := range map[runMode]Strategy{runLocking: Pessimistic, runOptimistic: Optimistic, runHotLocking: Adaptive} {
		if got := m.strategy(); got != want {
			t.Errorf("%d.strategy() = %v, want %v", m, got, want)
		}
	}
}

// The lifecycle machine: forward only, every state reachable from active,
// nothing after ended.
func TestStateMachine(t *testing.T) {
	for _, c := range []struct {
		from, to txState
		ok       bool
	}{
		{stateActive, stateCommitting, true}, {stateActive, stateReleased, true},
		{stateCommitting, stateReleased, true}, {stateReleased, stateEnded, true},
		{stateActive, stateEnded, false}, {stateCommitting, stateActive, false},
		{stateReleased, stateCommitting, false}, {stateEnded, stateActive, false},
		{stateEnded, stateReleased, false},
	} {
		if got := allowed(c.from, c.to); got != c.ok {
			t.Errorf("%v → %v allowed = %v, want %v", c.from, c.to, got, c.ok)
		}
	}
	if s := txState(9).String(); s != "txState(9)" {
		t.Errorf("String of an unknown state = %q", s)
	}
}
