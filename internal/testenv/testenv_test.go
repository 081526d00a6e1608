package testenv

import "testing"

func TestSeedAndInt(t *testing.T) {
	t.Setenv("TESTENV_SEED", "42")
	if got := Seed(t, "TESTENV_SEED"); got != 42 {
		t.Fatalf("Seed = %d, want 42", got)
	}
	t.Setenv("TESTENV_N", "7")
	if got := Int(t, "TESTENV_N", 3); got != 7 {
		t.Fatalf("Int = %d, want 7", got)
	}
	if got := Int(t, "TESTENV_UNSET", 3); got != 3 {
		t.Fatalf("Int of an unset variable = %d, want 3", got)
	}
}
