package wal

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/txkv/txkv/internal/crashpoint"
)

// The history the chunk tests write: ts 1..12, ts t puts key "k<t%6>" = "v<t>", so every
// key has two versions, one on each side of the first checkpoint at ts 4.
const (
	chunkLastTS  = 12
	chunkFirstTS = 4 // the first checkpoint
	chunkKeys    = 6
)

func chunkKey(ts uint64) string { return fmt.Sprintf("k%d", ts%chunkKeys) }

// chunkHistory appends the history, one record per ts.
func chunkHistory(t testing.TB, l *Log) {
	t.Helper()
	for ts := uint64(1); ts <= chunkLastTS; ts++ {
		if err := l.Append(rec(ts, chunkKey(ts), fmt.Sprintf("v%d", ts))); err != nil {
			t.Fatal(err)
		}
	}
}

// chunkEntries returns what a checkpoint at upTo writes: the newest version <= upTo of each
// key, in key order (what mvcc's CheckpointEntries yields).
func chunkEntries(upTo uint64) []BaseEntry {
	newest := map[string]uint64{}
	for ts := uint64(1); ts <= upTo; ts++ {
		newest[chunkKey(ts)] = ts
	}
	var es []BaseEntry
	for _, k := range slices.Sorted(maps.Keys(newest)) {
		ts := newest[k]
		es = append(es, BaseEntry{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", ts), Version: ts})
	}
	return es
}

// chunkWant is every acknowledged write's outcome: key → "value@version".
func chunkWant() map[string]string {
	m := map[string]string{}
	for _, e := range chunkEntries(chunkLastTS) {
		m[string(e.Key)] = fmt.Sprintf("%s@%d", e.Value, e.Version)
	}
	return m
}

// recovered is what recovery reconstructs from l: the base, with the records after the
// checkpoint ts replayed over it (as txn's Open does, through the memtable). It also checks
// the invariant that makes a base written ahead of meta safe: every base version above the
// checkpoint ts is the version of a record the log still holds, so the memtable has it too.
func recovered(t *testing.T, l *Log) map[string]string {
	t.Helper()
	ck := l.CheckpointTS()
	state := baseMap(t, l)
	recs, _ := replayAll(t, l)
	logged := map[uint64]bool{}
	for _, r := range recs {
		if r.TS <= ck {
			t.Fatalf("replay yielded ts %d <= checkpoint ts %d", r.TS, ck)
		}
		logged[r.TS] = true
		for _, op := range r.Ops {
			state[string(op.Key)] = fmt.Sprintf("%s@%d", op.Value, r.TS)
		}
	}
	if err := l.Scan(nil, nil, 0, func(k, _ []byte, ver uint64) bool {
		if ver > ck && !logged[ver] {
			t.Errorf("base %q@%d is above the checkpoint ts %d but the log lacks ts %d", k, ver, ck, ver)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return state
}

// aheadOfMeta counts base entries whose version is above the checkpoint ts: the trace of a
// checkpoint that committed some chunks and not its last transaction.
func aheadOfMeta(t *testing.T, l *Log) int {
	t.Helper()
	n := 0
	if err := l.Scan(nil, nil, 0, func(_, _ []byte, ver uint64) bool {
		if ver > l.CheckpointTS() {
			n++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCheckpointChunks: the base is written in transactions of at most CheckpointChunk
// entries or about CheckpointChunkBytes bytes, the last one with meta and the truncation.
func TestCheckpointChunks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     Options
		upTo     uint64
		wantTxns uint64
	}{
		// 6 entries: chunks of 4 (1 commit) and the last with 2.
		{"entries", Options{CheckpointChunk: 4}, chunkLastTS, 2},
		// Exactly 3 chunks of 2, then a last transaction with no entries.
		{"entries exact", Options{CheckpointChunk: 2}, chunkLastTS, 4},
		// Each entry is 8+2+2 or 8+2+3 bytes: 24 bytes close a chunk at 2 entries.
		{"bytes", Options{CheckpointChunkBytes: 24}, chunkLastTS, 4},
		// The defaults write 6 entries in one transaction.
		{"default", Options{}, chunkLastTS, 1},
		// No entries: one transaction (meta and truncation).
		{"empty", Options{CheckpointChunk: 1}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTemp(t, &tc.opts)
			chunkHistory(t, l)
			if err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(tc.upTo))); err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if st.CheckpointTxns != tc.wantTxns || st.Checkpoints != 1 {
				t.Fatalf("%d checkpoint transactions, %d checkpoints; want %d, 1", st.CheckpointTxns, st.Checkpoints, tc.wantTxns)
			}
			if l.CheckpointTS() != chunkLastTS || l.LogBytes() != 0 {
				t.Fatalf("ckpt %d, log bytes %d", l.CheckpointTS(), l.LogBytes())
			}
			if recs, _ := replayAll(t, l); len(recs) != 0 {
				t.Fatalf("%d records left to replay", len(recs))
			}
			want := chunkWant()
			if tc.upTo == 0 {
				want = map[string]string{}
			}
			if got := baseMap(t, l); !maps.Equal(got, want) {
				t.Fatalf("base %v, want %v", got, want)
			}
		})
	}
}

func TestCheckpointChunkOptionsValidated(t *testing.T) {
	for _, o := range []Options{{CheckpointChunk: -1}, {CheckpointChunkBytes: -1}} {
		if _, err := Open(filepath.Join(t.TempDir(), "x.db"), &o); err == nil {
			t.Fatalf("Open with %+v succeeded", o)
		}
	}
}

// TestCheckpointFailsBetweenChunks: the second chunk's commit fails after the first chunk
// committed. The log is poisoned; CheckpointTS and the log are the old checkpoint's; the base
// holds the first chunk's newer versions; and after reopening, base + replay from the OLD
// checkpoint ts is every acknowledged value. A checkpoint then completes normally.
func TestCheckpointFailsBetweenChunks(t *testing.T) {
	boom := errors.New("injected failure of the second chunk")
	var commits int
	failAt := 0 // the commit number that fails; 0: none
	opts := &Options{CheckpointChunk: 2, BeforeCheckpointCommit: func() error {
		commits++
		if commits == failAt {
			return boom
		}
		return nil
	}}
	l := openTemp(t, opts)
	chunkHistory(t, l)
	if err := l.Checkpoint(chunkFirstTS, slices.Values(chunkEntries(chunkFirstTS))); err != nil {
		t.Fatal(err)
	}
	failAt = commits + 2
	err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS)))
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, boom) {
		t.Fatalf("checkpoint with a failing second chunk: %v", err)
	}
	if l.CheckpointTS() != chunkFirstTS || l.Failed() == nil {
		t.Fatalf("after the failure: ckpt %d, failed %v", l.CheckpointTS(), l.Failed())
	}
	if err := l.Append(rec(chunkLastTS+1, "x", "y")); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("append to a poisoned log: %v", err)
	}

	l = reopen(t, l, &Options{CheckpointChunk: 2})
	if l.CheckpointTS() != chunkFirstTS {
		t.Fatalf("reopened: ckpt %d, want the old %d", l.CheckpointTS(), chunkFirstTS)
	}
	if n := aheadOfMeta(t, l); n != 2 {
		t.Fatalf("%d base entries above the checkpoint ts, want the first chunk's 2", n)
	}
	if recs, last := replayAll(t, l); len(recs) != chunkLastTS-chunkFirstTS || last != chunkLastTS {
		t.Fatalf("replay after the failure: %d records up to %d", len(recs), last)
	}
	if got, want := recovered(t, l), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	// The next checkpoint rewrites the first chunk (same versions) and completes.
	if err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS))); err != nil {
		t.Fatal(err)
	}
	if got, want := baseMap(t, l), chunkWant(); !maps.Equal(got, want) || l.CheckpointTS() != chunkLastTS {
		t.Fatalf("after the redo: ckpt %d, base %v, want %v", l.CheckpointTS(), got, want)
	}
}

// TestCheckpointBadEntryInLaterChunk: an invalid entry in the second chunk fails the
// checkpoint without poisoning the log; the first chunk stays written, and that is safe.
func TestCheckpointBadEntryInLaterChunk(t *testing.T) {
	l := openTemp(t, &Options{CheckpointChunk: 2})
	chunkHistory(t, l)
	es := chunkEntries(chunkLastTS)
	es[3].Key = nil
	err := l.Checkpoint(chunkLastTS, slices.Values(es))
	if err == nil || errors.Is(err, ErrLogFailed) || l.Failed() != nil {
		t.Fatalf("bad entry: %v (log failed: %v)", err, l.Failed())
	}
	if l.CheckpointTS() != 0 || aheadOfMeta(t, l) != 2 {
		t.Fatalf("after the bad entry: ckpt %d, %d base entries ahead", l.CheckpointTS(), aheadOfMeta(t, l))
	}
	if got, want := recovered(t, l), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	if err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS))); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointStopsWhenClosed: a Close during a checkpoint makes it stop between chunks
// (Close waits for it) with ErrClosed, leaving the old checkpoint.
func TestCheckpointStopsWhenClosed(t *testing.T) {
	l := openTemp(t, &Options{CheckpointChunk: 1})
	chunkHistory(t, l)
	closed := make(chan error, 1)
	es := chunkEntries(chunkLastTS)
	err := l.Checkpoint(chunkLastTS, func(yield func(BaseEntry) bool) {
		for i, e := range es {
			if i == 2 {
				go func() { closed <- l.Close() }()
				waitFor(t, "Close to begin", l.closed.Load)
			}
			if !yield(e) {
				return
			}
		}
	})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("checkpoint across Close: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	l2, err := Open(l.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if l2.CheckpointTS() != 0 || aheadOfMeta(t, l2) != 2 {
		t.Fatalf("reopened: ckpt %d, %d entries ahead, want 0 and 2", l2.CheckpointTS(), aheadOfMeta(t, l2))
	}
	if got, want := recovered(t, l2), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// chunkChildEnv names the file TestCheckpointKilledBetweenChunks's child writes.
const chunkChildEnv = "TXKV_WAL_CHUNK_CHILD"

// TestCheckpointKilledBetweenChunks: kill -9 after a checkpoint's first chunk committed.
// The child (this test binary, re-executed with the wal.checkpoint.mid crash point armed)
// writes the history durably, checkpoints at ts 4 (two chunks and the last transaction: three
// hits of the point) and then at ts 12 with chunks of two; the fifth hit, inside the second
// chunk's transaction, kills it. Reopened, the file has the old checkpoint, the full log after
// it, the first chunk in the base, and every acknowledged value.
func TestCheckpointKilledBetweenChunks(t *testing.T) {
	if os.Getenv(chunkChildEnv) != "" {
		t.Skip("this is the child")
	}
	path := filepath.Join(t.TempDir(), "txkv.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointChunkChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), chunkChildEnv+"="+path,
		crashpoint.EnvName+"="+crashpoint.WALMidCheckpoint, crashpoint.EnvSkip+"=4")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child: %v, want killed\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "history durable") {
		t.Fatalf("child died before writing the history\nstdout:\n%s", stdout.String())
	}
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.CheckpointTS() != chunkFirstTS {
		t.Fatalf("reopened: ckpt %d, want the old %d", l.CheckpointTS(), chunkFirstTS)
	}
	if n := aheadOfMeta(t, l); n != 2 {
		t.Fatalf("%d base entries above the checkpoint ts, want the first chunk's 2", n)
	}
	if got, want := recovered(t, l), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// TestCheckpointChunkChild is the child of TestCheckpointKilledBetweenChunks.
func TestCheckpointChunkChild(t *testing.T) {
	path := os.Getenv(chunkChildEnv)
	if path == "" {
		t.Skip("run by TestCheckpointKilledBetweenChunks")
	}
	l, err := Open(path, &Options{CheckpointChunk: 2}) // SyncAlways: acknowledged means durable
	if err != nil {
		t.Fatal(err)
	}
	chunkHistory(t, l)
	fmt.Println("history durable")
	if err := l.Checkpoint(chunkFirstTS, slices.Values(chunkEntries(chunkFirstTS))); err != nil {
		t.Fatal(err)
	}
	fmt.Println("first checkpoint done")
	_ = l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS)))
	t.Fatal("the crash point never killed the process")
}
