package elle_test

import (
	"path/filepath"
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
	"github.com/txkv/txkv/internal/testenv"
)

// The list-append workload against txkv lives in internal/conformance,
// shared with every engine; these run it on the local engine.

// txnsPerRun is the number of logical transactions of each run:
// TXKV_ELLE_TXNS, default 2,000 (the full size is 50,000).
func txnsPerRun(t *testing.T) int { return testenv.Int(t, "TXKV_ELLE_TXNS", 2000) }

// local opens in-memory DBs without fsync.
var local = conformance.Target{Open: func(t testing.TB) *txkv.DB { return openDB(t, false) }}

func openDB(t testing.TB, file bool) *txkv.DB {
	t.Helper()
	opts := txkv.DefaultOptions()
	opts.Sync = txkv.SyncNone
	path := ""
	if file {
		path = filepath.Join(t.TempDir(), "elle.db")
		opts.CheckpointBytes = 256 << 10 // checkpoint often: reads cross the base
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

func TestTxkvSerializable(t *testing.T) {
	conformance.ElleSerializable(t, local, txnsPerRun(t), seedFromEnv(t))
}

// TestTxkvSerializableMixed: the four strategies side by side on the same
// keys, in memory and in a file that checkpoints often.
func TestTxkvSerializableMixed(t *testing.T) {
	seed := seedFromEnv(t)
	n := txnsPerRun(t)
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			conformance.ElleSerializableMixed(t, openDB(t, file), local, n, seed)
		})
	}
}

// TestTxkvSnapshot: Snapshot admits write skew (G2-item) and nothing else.
func TestTxkvSnapshot(t *testing.T) {
	conformance.ElleSnapshot(t, local, txnsPerRun(t), seedFromEnv(t))
}
