package lockmgr

import (
	"runtime"
	"strings"
	"testing"
)

func runtimeYield() { runtime.Gosched() }

// wantLocks fails t unless Locks(), formatted as the scenarios print it,
// is want (one line each; none: "(none)").
func wantLocks(t *testing.T, m *Manager, want ...string) {
	t.Helper()
	got, w := formatLocks(m.Locks()), strings.Join(want, "\n")
	if len(want) == 0 {
		w = "(none)"
	}
	if got != w {
		t.Fatalf("locks:\n%s\nwant:\n%s", got, w)
	}
}
