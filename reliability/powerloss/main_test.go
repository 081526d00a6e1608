package powerloss

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every mount's server must stop at
// Unmount.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
