package wal

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openTemp opens a fresh Log in a temp dir and closes it at the end of the test.
func openTemp(t testing.TB, opts *Options) *Log {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "txkv.db"), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

// reopen closes l and opens its file again with opts.
func reopen(t testing.TB, l *Log, opts *Options) *Log {
	t.Helper()
	if err := l.Close(); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Close: %v", err)
	}
	l2, err := Open(l.Path(), opts)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = l2.Close() })
	return l2
}

// queued is test introspection: how many appends wait for the next batch.
func (l *Log) queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.mu.queue)
}

func (l *Log) isClosing() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.closing
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond) // polling interval, not synchronization
	}
}

// replayAll returns every record Replay yields.
func replayAll(t testing.TB, l *Log) ([]*Record, uint64) {
	t.Helper()
	var recs []*Record
	last, err := l.Replay(func(r *Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	return recs, last
}

func rec(ts uint64, kv ...string) *Record {
	r := &Record{TS: ts, TxnID: ts * 10}
	for i := 0; i+1 < len(kv); i += 2 {
		r.Ops = append(r.Ops, Op{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
	}
	return r
}

// openHeld opens a log (opts may set anything but BeforeCommit) whose first batch stops
// inside its bbolt transaction: entered is closed when it gets there, and release lets it
// commit.
func openHeld(t testing.TB, opts Options) (l *Log, entered <-chan struct{}, release func()) {
	t.Helper()
	in, out := make(chan struct{}), make(chan struct{})
	var once sync.Once
	opts.BeforeCommit = func() error {
		once.Do(func() { close(in); <-out })
		return nil
	}
	return openTemp(t, &opts), in, func() { close(out) }
}
