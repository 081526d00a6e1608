package txkv_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
)

// TestMain checks that no test leaves a goroutine behind: every DB a test
// opens must be closed, and Close must wait for the log writer, the
// checkpointer and the deadlock sweeper.
//
// The kill -9 test re-executes this binary as a child (see kill_test.go);
// the child is killed, so it never reaches the leak check.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var bg = context.Background()

// waitLimit bounds every wait of a test on another goroutine or on the DB:
// far above anything a healthy run needs, so reaching it means a hang.
const waitLimit = 20 * time.Second

// openMem opens an in-memory DB closed at the end of the test.
func openMem(t testing.TB, opts *txkv.Options) *txkv.DB {
	t.Helper()
	db, err := txkv.Open("", opts)
	if err != nil {
		t.Fatalf("Open(\"\"): %v", err)
	}
	t.Cleanup(func() { closeQuietly(t, db) })
	return db
}

// openAt opens the file DB at path; the caller closes it.
func openAt(t testing.TB, path string, opts *txkv.Options) *txkv.DB {
	t.Helper()
	db, err := txkv.Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return db
}

// openFile opens a new file DB in t.TempDir(), closed at the end of the test.
func openFile(t testing.TB, opts *txkv.Options) (*txkv.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "txkv.db")
	db := openAt(t, path, opts)
	t.Cleanup(func() { closeQuietly(t, db) })
	return db, path
}

// closeQuietly closes db, accepting ErrClosed (the test closed it already).
func closeQuietly(t testing.TB, db *txkv.DB) {
	t.Helper()
	if err := db.Close(); err != nil && !errors.Is(err, txkv.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// The helpers every test file uses, shared with the conformance suite.
var (
	mustPut    = conformance.MustPut
	getString  = conformance.GetString
	wantValue  = conformance.WantValue
	wantAbsent = conformance.WantAbsent
	mustBegin  = conformance.MustBegin
)

// scanAll collects Scan(start, end) as "k=v" strings, in order.
func scanAll(t testing.TB, tx *txkv.Tx, start, end []byte) []string {
	t.Helper()
	var out []string
	err := tx.Scan(start, end, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	})
	if err != nil {
		t.Fatalf("Scan(%q, %q): %v", start, end, err)
	}
	return out
}

// waitFor polls cond (an introspection query) until it holds, failing the
// test after waitLimit. Polling an introspection API is how tests observe
// that another goroutine is blocked; they never sleep to "let it block".
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(200 * time.Microsecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// isWaiting reports whether transaction id waits for a lock right now.
func isWaiting(db *txkv.DB, id uint64) bool {
	for _, l := range db.Locks() {
		if l.TxID == id && !l.Granted {
			return true
		}
	}
	return false
}

// holds reports whether transaction id holds a granted lock on key in mode.
func holds(db *txkv.DB, id uint64, key string, mode txkv.LockMode) bool {
	for _, l := range db.Locks() {
		if l.TxID == id && l.Granted && !l.Range && string(l.Key) == key && l.Mode == mode {
			return true
		}
	}
	return false
}

// recv waits for one value from ch, failing the test after waitLimit.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// The strategy × isolation modes, shared with the conformance suite.
type mode = conformance.Mode

var (
	pessimisticSerializable = conformance.PessimisticSerializable
	pessimisticSnapshot     = conformance.PessimisticSnapshot
	optimisticSerializable  = conformance.OptimisticSerializable
	optimisticSnapshot      = conformance.OptimisticSnapshot
	hybridSerializable      = conformance.HybridSerializable
	hybridSnapshot          = conformance.HybridSnapshot
	adaptiveSerializable    = conformance.AdaptiveSerializable
	adaptiveSnapshot        = conformance.AdaptiveSnapshot
	allModes                = conformance.AllModes
)

// childEnv names the child test a re-executed test binary must run.
const childEnv = "TXKV_TEST_CHILD"

func isChild(name string) bool { return os.Getenv(childEnv) == name }

// runChildTest re-executes the test binary to run only the test named child
// (which must skip unless isChild(child)), and fails t if the child fails,
// panics, reports a data race or outlives limit. Scenarios that can crash
// or hang the process run this way so they fail one test, not the package.
func runChildTest(t *testing.T, child string, limit time.Duration) string {
	t.Helper()
	if os.Getenv(childEnv) != "" {
		t.Skip("this is a child process")
	}
	ctx, cancel := context.WithTimeout(bg, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+child+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+child)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if len(text) > 12000 {
		text = text[:6000] + "\n…\n" + text[len(text)-6000:]
	}
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s hung and was killed after %v:\n%s", child, limit, text)
	case err != nil:
		t.Fatalf("%s failed (%v):\n%s", child, err, text)
	case !strings.Contains(string(out), "--- PASS: "+child):
		t.Fatalf("%s did not run:\n%s", child, text)
	}
	return string(out)
}
