package crash_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain runs a bank child when the parent set childEnv (the child is killed, or exits on
// its own; it never runs the tests), and otherwise the tests, checking that none leaks a
// goroutine.
func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(bankChild(spec))
	}
	goleak.VerifyTestMain(m)
}
