package lockmgr

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A NOWAIT refusal names the requester, a private copy of the target, the
// mode, the conflicting holders and the conflicting requests queued ahead
// (with labels), and still matches ErrLockNotAvailable.
func TestLockErrorOfNoWait(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	m.SetLabel(1, "alice")
	must(t, m.Acquire(ctx, 1, Point([]byte("k")), Shared, Block, Forever))
	must(t, m.Acquire(ctx, 3, Point([]byte("k")), Shared, Block, Forever))
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, Point([]byte("k")), Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 2)

	key := []byte("k")
	err := m.Acquire(ctx, 4, Point(key), Exclusive, NoWait, Forever)
	key[0] = 'x' // the error keeps its own copy
	var le *LockError
	if !errors.As(err, &le) || !errors.Is(err, ErrLockNotAvailable) || errors.Is(err, ErrLockTimeout) {
		t.Fatalf("got %v", err)
	}
	if le.Txn != 4 || string(le.Target.Key) != "k" || le.Target.Range || le.Mode != Exclusive || le.Timeout != 0 {
		t.Fatalf("detail %+v", le)
	}
	if !slices.Equal(le.Holders, []uint64{1, 3}) || !slices.Equal(le.Queued, []uint64{2}) {
		t.Fatalf("holders %v queued %v, want [1 3] [2]", le.Holders, le.Queued)
	}
	want := `txkv: lock not available: txn 4 wants exclusive on "k", held by txn 1 ("alice"), txn 3, queued behind txn 2`
	if le.Error() != want {
		t.Fatalf("message:\n%s\nwant\n%s", le.Error(), want)
	}
	m.ReleaseAll(1)
	m.ReleaseAll(3)
	must(t, <-done)
	m.ReleaseAll(2)
}

// A lock timeout names the wait that ran out and who held the lock then.
func TestLockErrorOfTimeout(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	must(t, m.Acquire(ctx, 1, Span([]byte("a"), []byte("m")), Exclusive, Block, Forever))
	err := m.Acquire(ctx, 2, Point([]byte("c")), Shared, Block, 20*time.Millisecond)
	var le *LockError
	if !errors.As(err, &le) || !errors.Is(err, ErrLockTimeout) || errors.Is(err, ErrLockNotAvailable) {
		t.Fatalf("got %v", err)
	}
	if le.Txn != 2 || string(le.Target.Key) != "c" || le.Mode != Shared || le.Timeout != 20*time.Millisecond ||
		!slices.Equal(le.Holders, []uint64{1}) || len(le.Queued) != 0 {
		t.Fatalf("detail %+v", le)
	}
	want := `txkv: lock wait timeout: txn 2 waited 20ms for shared on "c", held by txn 1`
	if le.Error() != want {
		t.Fatalf("message:\n%s\nwant\n%s", le.Error(), want)
	}
	// A range request that times out names its range.
	err = m.Acquire(ctx, 3, Span([]byte("b"), nil), Shared, Block, 20*time.Millisecond)
	if !errors.As(err, &le) || !errors.Is(err, ErrLockTimeout) || !le.Target.Range ||
		string(le.Target.Key) != "b" || le.Target.End != nil || !slices.Equal(le.Holders, []uint64{1}) {
		t.Fatalf("range timeout %v", err)
	}
	if want := `txkv: lock wait timeout: txn 3 waited 20ms for shared on ["b",+inf), held by txn 1`; le.Error() != want {
		t.Fatalf("message:\n%s\nwant\n%s", le.Error(), want)
	}
	m.ReleaseAll(1)
}

// A NoWaitTimeout refusal is a *LockError matching ErrLockTimeout (and not
// ErrLockNotAvailable) that says it did not wait; it queues nothing.
func TestLockErrorOfNoWaitTimeout(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	must(t, m.Acquire(ctx, 1, Point([]byte("k")), Exclusive, Block, Forever))
	err := m.Acquire(ctx, 2, Point([]byte("k")), Shared, Block, 0)
	var le *LockError
	if !errors.As(err, &le) || !errors.Is(err, ErrLockTimeout) || errors.Is(err, ErrLockNotAvailable) {
		t.Fatalf("got %v", err)
	}
	if le.Timeout != 0 || !slices.Equal(le.Holders, []uint64{1}) {
		t.Fatalf("detail %+v", le)
	}
	want := `txkv: lock wait timeout: txn 2 did not wait for shared on "k", held by txn 1`
	if le.Error() != want {
		t.Fatalf("message:\n%s\nwant\n%s", le.Error(), want)
	}
	if s := m.Stats(); s.Timeouts != 1 || s.NotAvailable != 0 || s.Waits != 0 {
		t.Fatalf("stats %+v", s)
	}
	if noWaitTimeout.String() != "nowait-timeout" {
		t.Fatal(noWaitTimeout.String())
	}
	wantLocks(t, m, `"k": txn 1 X granted`)
	m.ReleaseAll(1)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
