package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
)

// The environment variables read at init.
const (
	EnvName = "TXKV_CRASHPOINT"      // the point that kills the process
	EnvSkip = "TXKV_CRASHPOINT_SKIP" // hits of it that pass first
)

// The named points. Each is one Hit call in the engine; the comment says where.
const (
	// TxnBeforeAppend: txn commit, after validation, before the record is enqueued in the log.
	TxnBeforeAppend = "txn.commit.before-append"
	// WALBeforeCommit: the wal writer, inside a batch's bbolt transaction after the puts,
	// before Commit.
	WALBeforeCommit = "wal.batch.before-commit"
	// WALAfterCommit: the wal writer, after the batch's bbolt commit, before its waiters
	// are woken (the commit is durable but nobody has been told).
	WALAfterCommit = "wal.batch.after-commit"
	// TxnAfterAppend: txn commit, after the record was enqueued (not yet durable), before
	// Install.
	TxnAfterAppend = "txn.commit.after-append"
	// TxnMidInstall: txn commit, after store.Install, before store.Done.
	TxnMidInstall = "txn.commit.mid-install"
	// TxnBeforeDurable: txn commit, installed and locks released (the writes are visible),
	// before waiting for the record's batch to be durable.
	TxnBeforeDurable = "txn.commit.before-durable"
	// WALMidCheckpoint: wal Checkpoint, inside each chunk's bbolt transaction, after that
	// chunk's base writes, before its commit (the last chunk also writes the meta checkpoint
	// ts and truncates the log, after this point).
	WALMidCheckpoint = "wal.checkpoint.mid"
	// WALMidTruncate: wal Checkpoint's log truncation, after each deleted record.
	WALMidTruncate = "wal.truncate.mid"
	// WALMidReplay: wal Replay (recovery at Open), after each record handed to the store.
	WALMidReplay = "wal.replay.mid"
	// TxnCloseAfterCheckpoint: txn Close, after the final checkpoint, before the log closes.
	TxnCloseAfterCheckpoint = "txn.close.after-checkpoint"
)

// All lists every named point.
var All = []string{
	TxnBeforeAppend, WALBeforeCommit, WALAfterCommit, TxnAfterAppend, TxnMidInstall,
	TxnBeforeDurable, WALMidCheckpoint, WALMidTruncate, WALMidReplay, TxnCloseAfterCheckpoint,
}

var (
	// armed is true when EnvName is set; written once at init, before any Hit.
	armed atomic.Bool
	// target and skip are the configuration, read once at init and never written again.
	target string
	skip   int64
	// hits counts the hits of target so far.
	hits atomic.Int64
)

func init() {
	target = os.Getenv(EnvName)
	if target == "" {
		return
	}
	if s := os.Getenv(EnvSkip); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			// A test set this; a bad value must not silently mean "skip 0".
			fmt.Fprintf(os.Stderr, "txkv crashpoint: %s=%q is not a non-negative integer; crash points disarmed\n", EnvSkip, s)
			return
		}
		skip = n
	}
	armed.Store(true)
}

// Hit marks the named point. If the process was started with TXKV_CRASHPOINT=name and this
// is hit number TXKV_CRASHPOINT_SKIP+1 or later of it, the process kills itself with SIGKILL
// and Hit does not return. Otherwise Hit returns at once.
func Hit(name string) {
	if armed.Load() {
		hit(name)
	}
}

// Armed reports whether the process was started with a crash point set.
func Armed() bool { return armed.Load() }

//go:noinline
func hit(name string) {
	if name != target {
		return
	}
	n := hits.Add(1)
	if n <= skip {
		return
	}
	fmt.Fprintf(os.Stderr, "txkv crashpoint: %s hit %d\n", name, n)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	// SIGKILL is delivered before kill returns to a single-threaded process, but with other
	// threads running this one may be scheduled again first: never run past the point.
	select {}
}
