package crash_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs a bank child when the parent set childEnv (the child is killed, or exits on
// its own; it never runs the tests), a file-classifying child when it set outcomeEnv, and
// otherwise the tests, checking that none leaks a goroutine.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(bankChild(spec))
	}
	if spec := os.Getenv(outcomeEnv); spec != "" {
		os.Exit(outcomeChild(spec))
	}
	goleak.VerifyTestMain(m)
}
