package wal

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesFile0600(t *testing.T) {
	l := openTemp(t, nil)
	info, err := os.Stat(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("file mode %v, want 0600", perm)
	}
	if l.CheckpointTS() != 0 || l.LogBytes() != 0 || l.Failed() != nil {
		t.Fatalf("fresh log: ckpt %d, bytes %d, failed %v", l.CheckpointTS(), l.LogBytes(), l.Failed())
	}
}

func TestOptionsValidation(t *testing.T) {
	if _, err := Open(t.TempDir()+"/x.db", &Options{Sync: SyncMode(7)}); err == nil {
		t.Fatal("Open accepted SyncMode(7)")
	}
	if SyncAlways.String() != "always" || SyncNone.String() != "none" || SyncMode(7).String() != "SyncMode(7)" {
		t.Fatal("SyncMode.String")
	}
}

func TestAppendReplayReopenOrder(t *testing.T) {
	l := openTemp(t, nil)
	for _, ts := range []uint64{5, 3, 9, 1, 7} {
		if err := l.Append(rec(ts, fmt.Sprint("k", ts), fmt.Sprint("v", ts))); err != nil {
			t.Fatalf("Append %d: %v", ts, err)
		}
	}
	if l.LogBytes() <= 0 {
		t.Fatal("LogBytes not counted")
	}
	bytesBefore := l.LogBytes()
	l = reopen(t, l, nil)
	if l.LogBytes() != bytesBefore {
		t.Fatalf("LogBytes after reopen %d, before %d", l.LogBytes(), bytesBefore)
	}
	recs, last := replayAll(t, l)
	if last != 9 || len(recs) != 5 {
		t.Fatalf("last %d, %d records", last, len(recs))
	}
	for i, r := range recs {
		ts := uint64(2*i + 1)
		if !equalRecords(r, rec(ts, fmt.Sprint("k", ts), fmt.Sprint("v", ts))) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	// An error from fn stops the replay and comes back as is.
	stop := errors.New("stop")
	n := 0
	last, err := l.Replay(func(*Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 || last != 0 {
		t.Fatalf("Replay with failing fn: last %d, n %d, err %v", last, n, err)
	}
}

func TestReplayManyChunksRetained(t *testing.T) {
	l := openTemp(t, &Options{Sync: SyncNone})
	const n = replayChunkRecords*2 + 17
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for ts := uint64(w + 1); ts <= n; ts += 8 {
				if err := l.Append(rec(ts, fmt.Sprint("key", ts), strings.Repeat("v", int(ts%50)))); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	l = reopen(t, l, nil)
	recs, last := replayAll(t, l) // records are retained across chunks: check them after
	if last != n || len(recs) != n {
		t.Fatalf("last %d, %d records, want %d", last, len(recs), n)
	}
	for i, r := range recs {
		ts := uint64(i + 1)
		if !equalRecords(r, rec(ts, fmt.Sprint("key", ts), strings.Repeat("v", int(ts%50)))) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
}

func TestAppendInvalid(t *testing.T) {
	l := openTemp(t, nil)
	if err := l.Append(nil); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("nil: %v", err)
	}
	if err := l.Append(rec(0)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("ts 0: %v", err)
	}
	if err := l.Checkpoint(10, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec(10)); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("ts at checkpoint: %v", err)
	}
	if err := l.Append(rec(11)); err != nil || l.Failed() != nil {
		t.Fatalf("valid append after invalid ones: %v, failed %v", err, l.Failed())
	}
}

// TestGroupCommitBatches holds the first batch inside its bbolt transaction until 63 more
// committers have queued, so the second batch must carry all 63.
func TestGroupCommitBatches(t *testing.T) {
	l, entered, release := openHeld(t, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	wg.Go(func() { errs <- l.Append(rec(1, "first", "x")) })
	<-entered
	for i := range 63 {
		wg.Go(func() { errs <- l.Append(rec(uint64(i+2), fmt.Sprint("k", i), "v")) })
	}
	waitFor(t, "63 queued appends", func() bool { return l.queued() == 63 })
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := l.Stats()
	if s.Batches != 2 || s.Records != 64 || s.MaxBatch != 63 || s.MeanBatch() != 32 {
		t.Fatalf("stats %+v, want 2 batches of 1 and 63", s)
	}
	if s.Fsyncs != 2*s.Commits || s.Commits != 2 {
		t.Fatalf("fsyncs %d commits %d", s.Fsyncs, s.Commits)
	}
	l = reopen(t, l, nil)
	if recs, last := replayAll(t, l); len(recs) != 64 || last != 64 {
		t.Fatalf("after reopen: %d records, last %d", len(recs), last)
	}
}

// TestGroupCommitStress: free-running concurrent committers; every acknowledged record is on
// disk after reopen, and batching happened (fewer batches than records).
func TestGroupCommitStress(t *testing.T) {
	for _, mode := range []SyncMode{SyncAlways, SyncNone} {
		t.Run(mode.String(), func(t *testing.T) {
			l := openTemp(t, &Options{Sync: mode})
			const workers, per = 32, 40
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						ts := uint64(i*workers + w + 1)
						if err := l.Append(rec(ts, fmt.Sprint("k", ts), "v")); err != nil {
							t.Errorf("Append: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			s := l.Stats()
			t.Logf("%s: %d records in %d batches (mean %.1f, max %d)", mode, s.Records, s.Batches, s.MeanBatch(), s.MaxBatch)
			if s.Records != workers*per || s.Batches >= s.Records {
				t.Fatalf("stats %+v: want %d records in fewer batches", s, workers*per)
			}
			if (mode == SyncNone) != (s.Fsyncs == 0) {
				t.Fatalf("%s: %d fsyncs", mode, s.Fsyncs)
			}
			l = reopen(t, l, &Options{Sync: mode})
			recs, last := replayAll(t, l)
			if len(recs) != workers*per || last != workers*per {
				t.Fatalf("after reopen: %d records, last %d", len(recs), last)
			}
		})
	}
}

// TestFailureSeam: the injected failure fails every waiter of the batch and everything queued
// behind it with ErrLogFailed, later appends are refused, what was acknowledged before
// survives, and reads keep working.
func TestFailureSeam(t *testing.T) {
	boom := errors.New("injected fsync failure")
	var calls int
	entered := make(chan struct{})
	release := make(chan struct{})
	l := openTemp(t, &Options{BeforeCommit: func() error {
		calls++         // only the writer goroutine calls the hook
		if calls == 3 { // batches: ts 1, ts 2, then ts 3
			close(entered)
			<-release
			return boom
		}
		return nil
	}})
	if err := l.Append(rec(1, "a", "1")); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(1, slices.Values([]BaseEntry{{Key: []byte("a"), Value: []byte("1"), Version: 1}})); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(rec(2, "b", "2")); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	go func() { errs <- l.Append(rec(3, "c", "3")) }() // batch 2, fails
	<-entered
	var wg sync.WaitGroup
	for i := range 5 { // queued behind the failing batch
		wg.Go(func() { errs <- l.Append(rec(uint64(10+i), "d", "4")) })
	}
	waitFor(t, "5 queued", func() bool { return l.queued() == 5 })
	close(release)
	wg.Wait()
	for range 6 {
		if err := <-errs; !errors.Is(err, ErrLogFailed) || !errors.Is(err, boom) {
			t.Fatalf("waiter got %v, want ErrLogFailed wrapping the cause", err)
		}
	}
	if err := l.Append(rec(20, "e", "5")); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("later append: %v", err)
	}
	if err := l.Failed(); !errors.Is(err, ErrLogFailed) || !errors.Is(err, boom) {
		t.Fatalf("Failed() = %v", err)
	}
	if err := l.Checkpoint(2, nil); !errors.Is(err, ErrLogFailed) {
		t.Fatalf("checkpoint on a failed log: %v", err)
	}
	// Reads still work.
	if v, ver, ok, err := l.Get([]byte("a")); err != nil || !ok || string(v) != "1" || ver != 1 {
		t.Fatalf("Get after failure: %q %d %v %v", v, ver, ok, err)
	}
	if recs, last := replayAll(t, l); len(recs) != 1 || last != 2 {
		t.Fatalf("replay after failure: %d records, last %d", len(recs), last)
	}
	// Nothing acknowledged was lost; nothing failed was written.
	l = reopen(t, l, nil)
	if recs, last := replayAll(t, l); len(recs) != 1 || recs[0].TS != 2 || last != 2 {
		t.Fatalf("after reopen: %d records, last %d", len(recs), last)
	}
	if l.CheckpointTS() != 1 || l.Failed() != nil {
		t.Fatalf("after reopen: ckpt %d failed %v", l.CheckpointTS(), l.Failed())
	}
}

func TestCheckpointAndReplay(t *testing.T) {
	l := openTemp(t, nil)
	for ts := uint64(1); ts <= 10; ts++ {
		if err := l.Append(rec(ts, fmt.Sprint("k", ts), fmt.Sprint("v", ts))); err != nil {
			t.Fatal(err)
		}
	}
	before := l.LogBytes()
	entries := []BaseEntry{
		{Key: []byte("k1"), Value: []byte("v1"), Version: 1},
		{Key: []byte("k2"), Value: []byte("v2"), Version: 2},
		{Key: []byte("k3"), Value: []byte(""), Version: 3},
	}
	if err := l.Checkpoint(5, slices.Values(entries)); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(5, slices.Values([]BaseEntry{{Key: []byte("k2"), Delete: true}})); err != nil {
		t.Fatal(err)
	}
	if err := l.Checkpoint(4, nil); err == nil {
		t.Fatal("checkpoint ts moved backwards")
	}
	check := func(l *Log) {
		t.Helper()
		if l.CheckpointTS() != 5 || l.LogBytes() >= before || l.LogBytes() <= 0 {
			t.Fatalf("ckpt %d, log bytes %d (before %d)", l.CheckpointTS(), l.LogBytes(), before)
		}
		recs, last := replayAll(t, l)
		if len(recs) != 5 || recs[0].TS != 6 || last != 10 {
			t.Fatalf("replay after checkpoint: %d records from %d, last %d", len(recs), recs[0].TS, last)
		}
		got := baseMap(t, l)
		want := map[string]string{"k1": "v1@1", "k3": "@3"}
		if !maps.Equal(got, want) {
			t.Fatalf("base %v, want %v", got, want)
		}
		if v, ver, ok, err := l.Get([]byte("k3")); err != nil || !ok || v == nil || len(v) != 0 || ver != 3 {
			t.Fatalf("Get empty value: %q %d %v %v", v, ver, ok, err)
		}
		if _, _, ok, err := l.Get([]byte("k2")); ok || err != nil {
			t.Fatalf("deleted key: ok %v err %v", ok, err)
		}
	}
	check(l)
	l = reopen(t, l, nil)
	check(l)
	if l.Stats().Checkpoints != 0 {
		t.Fatal("stats survive reopen?")
	}
	// Checkpoint past everything empties the log.
	if err := l.Checkpoint(10, nil); err != nil {
		t.Fatal(err)
	}
	if recs, last := replayAll(t, l); len(recs) != 0 || last != 10 || l.LogBytes() != 0 {
		t.Fatalf("after full checkpoint: %d records, last %d, bytes %d", len(recs), last, l.LogBytes())
	}
}

func baseMap(t testing.TB, l *Log) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := l.Scan(nil, nil, 0, func(k, v []byte, ver uint64) bool {
		m[string(k)] = fmt.Sprintf("%s@%d", v, ver)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestCheckpointAtomic: a checkpoint whose commit fails changes nothing on disk — not the
// base, not the checkpoint ts, not the log — and poisons the log; a checkpoint with a bad
// entry changes nothing and does not.
func TestCheckpointAtomic(t *testing.T) {
	boom := errors.New("injected checkpoint failure")
	fail := false
	l := openTemp(t, &Options{BeforeCheckpointCommit: func() error {
		if fail {
			return boom
		}
		return nil
	}})
	for ts := uint64(1); ts <= 4; ts++ {
		if err := l.Append(rec(ts, "k", fmt.Sprint(ts))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(1, slices.Values([]BaseEntry{{Key: []byte("k"), Value: []byte("1"), Version: 1}})); err != nil {
		t.Fatal(err)
	}
	bad := []BaseEntry{{Key: []byte("k"), Value: []byte("3"), Version: 3}, {Key: nil, Value: []byte("x")}}
	if err := l.Checkpoint(3, slices.Values(bad)); err == nil || errors.Is(err, ErrLogFailed) {
		t.Fatalf("bad entry: %v", err)
	}
	if l.Failed() != nil {
		t.Fatal("a bad entry poisoned the log")
	}
	fail = true
	err := l.Checkpoint(3, slices.Values([]BaseEntry{{Key: []byte("k"), Value: []byte("3"), Version: 3}}))
	if !errors.Is(err, ErrLogFailed) || !errors.Is(err, boom) {
		t.Fatalf("failed checkpoint: %v", err)
	}
	check := func(l *Log) {
		t.Helper()
		if l.CheckpointTS() != 1 {
			t.Fatalf("ckpt ts %d after failed checkpoint", l.CheckpointTS())
		}
		if got := baseMap(t, l); !maps.Equal(got, map[string]string{"k": "1@1"}) {
			t.Fatalf("base %v after failed checkpoint", got)
		}
		if recs, last := replayAll(t, l); len(recs) != 3 || recs[0].TS != 2 || last != 4 {
			t.Fatalf("log after failed checkpoint: %d records, last %d", len(recs), last)
		}
	}
	check(l)
	check(reopen(t, l, nil))
}

func TestScan(t *testing.T) {
	l := openTemp(t, nil)
	const n = 1000 // several Scan chunks
	var entries []BaseEntry
	for i := range n {
		entries = append(entries, BaseEntry{Key: fmt.Appendf(nil, "key%04d", i), Value: fmt.Appendf(nil, "val%d", i), Version: uint64(i + 1)})
	}
	if err := l.Checkpoint(n, slices.Values(entries)); err != nil {
		t.Fatal(err)
	}
	collect := func(start, end string, limit int, stopAfter int) []string {
		var out []string
		var s, e []byte
		if start != "" {
			s = []byte(start)
		}
		if end != "" {
			e = []byte(end)
		}
		err := l.Scan(s, e, limit, func(k, v []byte, ver uint64) bool {
			if want := fmt.Sprintf("val%d", ver-1); string(v) != want {
				t.Fatalf("key %s: value %s version %d", k, v, ver)
			}
			out = append(out, string(k))
			return stopAfter == 0 || len(out) < stopAfter
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cases := []struct {
		start, end        string
		limit, stop       int
		n                 int
		first, lastWanted string
	}{
		{"", "", 0, 0, n, "key0000", "key0999"},
		{"key0100", "key0600", 0, 0, 500, "key0100", "key0599"},
		{"key0100", "", 300, 0, 300, "key0100", "key0399"},
		{"", "key0700", 0, 257, 257, "key0000", "key0256"},
		{"key05", "key0500", 0, 0, 0, "", ""},
		{"zzz", "", 0, 0, 0, "", ""},
		{"key0998x", "", 5, 0, 1, "key0999", "key0999"},
	}
	for _, c := range cases {
		got := collect(c.start, c.end, c.limit, c.stop)
		if len(got) != c.n {
			t.Fatalf("scan %+v: %d keys", c, len(got))
		}
		if c.n > 0 && (got[0] != c.first || got[len(got)-1] != c.lastWanted || !slices.IsSorted(got)) {
			t.Fatalf("scan %+v: %s..%s", c, got[0], got[len(got)-1])
		}
	}
}

// TestBusyOpenFails: a second Open of a file in use fails with ErrInUse instead of hanging —
// at once when this process holds it through Open, and after OpenTimeout when something else
// holds bbolt's file lock (here bbolt itself, standing in for another process).
func TestBusyOpenFails(t *testing.T) {
	l := openTemp(t, nil)
	l2, err := Open(l.Path(), nil)
	if err == nil {
		_ = l2.Close()
		t.Fatal("second Open of a busy file succeeded")
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "already open in this process") {
		t.Fatalf("second Open in this process: %v, want ErrInUse at once", err)
	}

	other := filepath.Join(t.TempDir(), "other.db")
	holder, err := bolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	l3, err := Open(other, &Options{OpenTimeout: 20 * time.Millisecond})
	if err == nil {
		_ = l3.Close()
		t.Fatal("Open of a file whose lock is held succeeded")
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("Open of a locked file: %v, want ErrInUse naming the lock", err)
	}
}

// TestCloseDrains: appends queued when Close is called complete successfully; Close waits for
// them; afterwards everything returns ErrClosed.
func TestCloseDrains(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	l := openTemp(t, &Options{BeforeCommit: func() error {
		once.Do(func() { close(entered); <-release })
		return nil
	}})
	errs := make(chan error, 11)
	go func() { errs <- l.Append(rec(1, "a", "1")) }()
	<-entered
	for i := range 10 {
		go func() { errs <- l.Append(rec(uint64(i+2), "b", "2")) }()
	}
	waitFor(t, "10 queued", func() bool { return l.queued() == 10 })
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	waitFor(t, "Close to begin", l.isClosing)
	if err := l.Append(rec(100, "late", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("append during Close: %v", err)
	}
	close(release)
	for range 11 {
		if err := <-errs; err != nil {
			t.Fatalf("queued append: %v", err)
		}
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
	if err := l.Append(rec(200, "x", "y")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if _, _, _, err := l.Get([]byte("a")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := l.Scan(nil, nil, 0, func([]byte, []byte, uint64) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close: %v", err)
	}
	if _, err := l.Replay(func(*Record) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Replay after Close: %v", err)
	}
	if err := l.Checkpoint(5, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Checkpoint after Close: %v", err)
	}
	l2, err := Open(l.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if recs, _ := replayAll(t, l2); len(recs) != 11 {
		t.Fatalf("after reopen: %d records, want 11", len(recs))
	}
}
