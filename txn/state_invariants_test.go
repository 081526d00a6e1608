//go:build txkv_invariants

package txn

import "testing"

// With the checks on, a transition the machine does not have panics.
func TestIllegalTransitionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("ended → active did not panic under txkv_invariants")
		}
	}()
	tx := &Tx{state: stateEnded}
	tx.setStateLocked(stateActive)
}
