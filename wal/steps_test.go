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
	"testing"

	"github.com/txkv/txkv/internal/crashpoint"
)

// lowSpaceOpts reports free bytes of free space to the log, whatever the disk has.
func lowSpaceOpts(free int64, o Options) *Options {
	o.freeSpace = func(string) (int64, bool) { return free, true }
	return &o
}

// TestCheckpointInSteps: with too little free space for the chunked scheme, a checkpoint
// walks the log in ts order, one transaction per step; each step moves the checkpoint ts and
// truncates the log behind it, and the result is the chunked checkpoint's: the base holds the
// newest version of each key, the log is empty, nothing is left to replay.
func TestCheckpointInSteps(t *testing.T) {
	for _, tc := range []struct {
		name      string
		free      int64
		opts      Options
		wantSteps uint64
	}{
		// 8 KiB of free space: 1 key per step, 2 KiB of records: one record per step.
		{"one record per step", 8 << 10, Options{}, chunkLastTS},
		// Plenty of free space but chunks of 5 distinct keys: 12 records over 6 keys.
		{"chunk-bounded", 1 << 20, Options{CheckpointChunk: 5}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTemp(t, lowSpaceOpts(tc.free, tc.opts))
			chunkHistory(t, l)
			if err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS))); err != nil {
				t.Fatal(err)
			}
			st := l.Stats()
			if st.SteppedCheckpoints != 1 || st.Checkpoints != 1 || st.CheckpointTxns != tc.wantSteps {
				t.Fatalf("stats %+v: want 1 stepped checkpoint in %d transactions", st, tc.wantSteps)
			}
			if l.CheckpointTS() != chunkLastTS || l.LogBytes() != 0 {
				t.Fatalf("ckpt %d, log bytes %d", l.CheckpointTS(), l.LogBytes())
			}
			if got, want := baseMap(t, l), chunkWant(); !maps.Equal(got, want) {
				t.Fatalf("base %v, want %v", got, want)
			}
			if recs, _ := replayAll(t, l); len(recs) != 0 {
				t.Fatalf("%d records left to replay", len(recs))
			}
		})
	}
}

// TestLowSpaceChoosesSteps: the scheme follows the free space: plenty (the real disk) keeps
// the chunked checkpoint; less than twice the log plus two chunks and a MiB means steps.
func TestLowSpaceChoosesSteps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    *Options
		stepped uint64
	}{
		{"disk", nil, 0},
		{"unknown", &Options{freeSpace: func(string) (int64, bool) { return 0, false }}, 0},
		{"ample", lowSpaceOpts(1<<40, Options{}), 0},
		{"low", lowSpaceOpts(2*DefaultCheckpointChunkBytes, Options{}), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTemp(t, tc.opts)
			chunkHistory(t, l)
			if err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS))); err != nil {
				t.Fatal(err)
			}
			if got := l.Stats().SteppedCheckpoints; got != tc.stepped {
				t.Fatalf("%d stepped checkpoints, want %d", got, tc.stepped)
			}
		})
	}
}

// TestStepsFailBetween: the third step's commit fails. The log is poisoned and the checkpoint
// ts is the second step's cut — each step was a whole checkpoint — and after reopening, the
// base and the records after that cut recover every acknowledged value; the next
// checkpoint (in steps again) finishes.
func TestStepsFailBetween(t *testing.T) {
	boom := errors.New("injected failure of the third step")
	n := 0
	opts := lowSpaceOpts(8<<10, Options{BeforeCheckpointCommit: func() error {
		if n++; n == 3 {
			return boom
		}
		return nil
	}})
	l := openTemp(t, opts)
	chunkHistory(t, l)
	err := l.Checkpoint(chunkLastTS, slices.Values(chunkEntries(chunkLastTS)))
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, boom) {
		t.Fatalf("checkpoint with a failing third step: %v", err)
	}
	if l.CheckpointTS() != 2 || l.Failed() == nil {
		t.Fatalf("after the failure: ckpt %d (want 2), failed %v", l.CheckpointTS(), l.Failed())
	}
	l = reopen(t, l, lowSpaceOpts(8<<10, Options{}))
	if l.CheckpointTS() != 2 {
		t.Fatalf("reopened: ckpt %d, want 2", l.CheckpointTS())
	}
	if got, want := recovered(t, l), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
	if err := l.Checkpoint(chunkLastTS, nil); err != nil {
		t.Fatal(err)
	}
	if got, want := baseMap(t, l), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("base %v, want %v", got, want)
	}
}

// TestStepsDropRetainedTail: a checkpoint in steps runs because the disk is nearly full, and
// a retained tail would need its own copy in the base: so steps keep none. The horizon moves
// to the checkpoint ts and a reader of the tail is told ErrCompacted, never given a gap.
func TestStepsDropRetainedTail(t *testing.T) {
	l := openTemp(t, lowSpaceOpts(8<<10, Options{RetainRecords: 4}))
	want := map[string]string{}
	for ts := uint64(1); ts <= 12; ts++ {
		appendTS(t, l, ts)
		want[fmt.Sprint("k", ts)] = fmt.Sprintf("v%d@%d", ts, ts)
	}
	if err := l.Checkpoint(12, nil); err != nil {
		t.Fatal(err)
	}
	if st := l.Stats(); st.CheckpointTxns != 12 {
		t.Fatalf("%d steps, want 12", st.CheckpointTxns)
	}
	if h, err := l.TailHorizon(); err != nil || h != 12 {
		t.Fatalf("horizon %d %v, want 12", h, err)
	}
	if got, err := tailTS(t, l, 9, 12, 0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("tail from 9: %v %v, want ErrCompacted", got, err)
	}
	if got := baseMap(t, l); !maps.Equal(got, want) {
		t.Fatalf("base %v, want %v", got, want)
	}
	if l.LogBytes() != 0 {
		t.Fatalf("log bytes %d after the checkpoint", l.LogBytes())
	}
}

// TestStepsDeletesAndHotKeys: within a step the last write of a key wins, a delete removes
// it from the base, and a key written in several steps ends at its newest version.
func TestStepsDeletesAndHotKeys(t *testing.T) {
	l := openTemp(t, lowSpaceOpts(1<<20, Options{CheckpointChunk: 2}))
	appendRec := func(r *Record) {
		t.Helper()
		if err := l.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	for ts := uint64(1); ts <= 9; ts++ {
		appendRec(rec(ts, "hot", fmt.Sprintf("h%d", ts), fmt.Sprintf("k%d", ts%3), "x"))
	}
	appendRec(&Record{TS: 10, Ops: []Op{{Key: []byte("k1"), Delete: true}}})
	if err := l.Checkpoint(10, nil); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hot": "h9@9", "k0": "x@9", "k2": "x@8"}
	if got := baseMap(t, l); !maps.Equal(got, want) {
		t.Fatalf("base %v, want %v", got, want)
	}
	if st := l.Stats(); st.CheckpointTxns < 3 {
		t.Fatalf("%d steps, want several (2 distinct keys per step)", st.CheckpointTxns)
	}
}

// stepChildEnv names the file TestStepsKilledBetween's child writes.
const stepChildEnv = "TXKV_WAL_STEP_CHILD"

// TestStepsKilledBetween: kill -9 inside the fifth step of a checkpoint in steps (the child,
// this test binary re-executed with the wal.checkpoint.mid crash point armed, writes the
// history durably and checkpoints one record per step). Reopened, the file is the fourth
// step's checkpoint: ts 4, the log after it, every acknowledged value.
func TestStepsKilledBetween(t *testing.T) {
	if os.Getenv(stepChildEnv) != "" {
		t.Skip("this is the child")
	}
	path := filepath.Join(t.TempDir(), "txkv.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestStepsChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), stepChildEnv+"="+path,
		crashpoint.EnvName+"="+crashpoint.WALMidCheckpoint, crashpoint.EnvSkip+"=4")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !strings.Contains(stderr.String(), "wal.checkpoint.mid hit 5") {
		t.Fatalf("child: %v, want killed at the fifth step\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.CheckpointTS() != 4 {
		t.Fatalf("reopened: ckpt %d, want 4 (four steps committed)", l.CheckpointTS())
	}
	if recs, last := replayAll(t, l); len(recs) != chunkLastTS-4 || last != chunkLastTS {
		t.Fatalf("replay: %d records up to %d", len(recs), last)
	}
	if got, want := recovered(t, l), chunkWant(); !maps.Equal(got, want) {
		t.Fatalf("recovered %v, want %v", got, want)
	}
}

// TestStepsChild is the child of TestStepsKilledBetween.
func TestStepsChild(t *testing.T) {
	path := os.Getenv(stepChildEnv)
	if path == "" {
		t.Skip("run by TestStepsKilledBetween")
	}
	l, err := Open(path, lowSpaceOpts(8<<10, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	chunkHistory(t, l)
	_ = l.Checkpoint(chunkLastTS, nil)
	t.Fatal("the crash point never killed the process")
}
