package linear_test

import (
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
	"github.com/txkv/txkv/internal/testenv"
)

// The porcupine check lives in internal/conformance, shared with every
// engine; these run it on the local engine, in memory and in a file.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func opsPerClient(t *testing.T) int { return testenv.Int(t, "TXKV_LINEAR_OPS", 300) }

func seedFromEnv(t *testing.T) uint64 { return testenv.Seed(t, "TXKV_LINEAR_SEED") }

func openDB(t testing.TB, file bool) *txkv.DB {
	t.Helper()
	opts := txkv.DefaultOptions()
	opts.Sync = txkv.SyncNone
	path := ""
	if file {
		path = filepath.Join(t.TempDir(), "linear.db")
		opts.CheckpointBytes = 64 << 10 // checkpoint during the run too
	}
	db, err := txkv.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

var backends = []struct {
	name string
	file bool
}{{"memory", false}, {"file", true}}

// TestLinearizable: txkv's single-key operations are linearizable.
func TestLinearizable(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			conformance.Linearizable(t, []*txkv.DB{openDB(t, b.file)}, seedFromEnv(t), opsPerClient(t))
		})
	}
}

// TestBrokenRejected: the checker must reject a store that serves stale
// reads or loses puts; otherwise TestLinearizable's Ok would mean nothing.
func TestBrokenRejected(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tg := conformance.Target{Open: func(t testing.TB) *txkv.DB { return openDB(t, b.file) }}
			conformance.LinearBrokenRejected(t, tg, seedFromEnv(t), opsPerClient(t))
		})
	}
}
