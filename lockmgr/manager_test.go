package lockmgr

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv/deadlock"
)

func TestCloseEndsWaits(t *testing.T) {
	m := New(nil)
	ctx := context.Background()
	if err := m.Acquire(ctx, 1, Point([]byte("k")), Exclusive, Block, Forever); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, Point([]byte("k")), Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 2)
	m.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending wait: %v, want ErrClosed", err)
	}
	if err := m.Acquire(ctx, 3, Point([]byte("j")), Shared, Block, Forever); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	m.ReleaseAll(1)
	if l := m.Locks(); len(l) != 0 {
		t.Fatalf("locks after Close+ReleaseAll: %v", l)
	}
	m.Close() // idempotent
}

func TestInvalidRequests(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	cases := []struct {
		name string
		t    Target
		mode Mode
		p    WaitPolicy
	}{
		{"bad mode", Point([]byte("a")), Mode(9), Block},
		{"bad policy", Point([]byte("a")), Shared, WaitPolicy(9)},
		{"point with end", Target{Key: []byte("a"), End: []byte("b")}, Shared, Block},
		{"empty range", Span([]byte("b"), []byte("b")), Shared, Block},
		{"reversed range", Span([]byte("c"), []byte("b")), Shared, Block},
	}
	for _, c := range cases {
		err := m.Acquire(ctx, 1, c.t, c.mode, c.p, Forever)
		if !errors.Is(err, ErrInvalidRequest) || !strings.HasPrefix(err.Error(), "txkv: ") {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if len(m.Locks()) != 0 {
		t.Error("invalid requests left entries")
	}
	if err := (&Options{Detection: 9}).Validate(); err == nil {
		t.Error("Validate accepted a bad mode")
	}
	if err := (&Options{Interval: -1}).Validate(); err == nil {
		t.Error("Validate accepted a negative interval")
	}
	if err := (*Options)(nil).Validate(); err != nil {
		t.Error(err)
	}
}

func TestAlreadyWaiting(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	_ = m.Acquire(ctx, 1, Point([]byte("a")), Exclusive, Block, Forever)
	_ = m.Acquire(ctx, 1, Point([]byte("b")), Exclusive, Block, Forever)
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, Point([]byte("a")), Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 2)
	if err := m.Acquire(ctx, 2, Point([]byte("b")), Exclusive, Block, Forever); !errors.Is(err, ErrAlreadyWaiting) {
		t.Fatalf("second concurrent wait: %v", err)
	}
	m.ReleaseAll(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.ReleaseAll(2)
}

// TestGrantTimeoutRace: grants and timeouts that fire together have one
// outcome: nil means the lock is held, an error means it is not.
func TestGrantTimeoutRace(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	key := Point([]byte("k"))
	granted, timedOut := 0, 0
	for i := range 300 {
		holder, waiter := uint64(2*i+1), uint64(2*i+2)
		if err := m.Acquire(ctx, holder, key, Exclusive, Block, Forever); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Acquire(ctx, waiter, key, Exclusive, Block, 100*time.Microsecond) }()
		waitUntilWaitingOrDone(m, waiter, done)
		// Release somewhere around the moment the timer fires. Yield while
		// spinning so that with GOMAXPROCS=1 the waiter's timer can fire too.
		for spin := time.Now(); time.Since(spin) < time.Duration(i%20)*50*time.Microsecond; {
			runtime.Gosched()
		}
		m.ReleaseAll(holder)
		err := <-done
		holds := m.Holds(waiter, key, Exclusive)
		switch {
		case err == nil && holds:
			granted++
		case errors.Is(err, ErrLockTimeout) && !holds:
			timedOut++
		default:
			t.Fatalf("trial %d: err %v but holds=%v", i, err, holds)
		}
		m.ReleaseAll(waiter)
	}
	t.Logf("granted %d, timed out %d", granted, timedOut)
	if granted == 0 || timedOut == 0 {
		t.Errorf("the race was not exercised: %d grants, %d timeouts", granted, timedOut)
	}
	if s := m.Stats(); s.Waits == 0 || s.WaitHistogram == [NumWaitBuckets]uint64{} || s.WaitTime <= 0 {
		t.Fatalf("wait stats not recorded: %+v", s)
	}
	if len(m.Locks()) != 0 {
		t.Fatal("entries left")
	}
}

func TestDeadlockErrorShape(t *testing.T) {
	var got []*DeadlockError
	var mu sync.Mutex
	m := New(&Options{OnDeadlock: func(e *DeadlockError) { mu.Lock(); got = append(got, e); mu.Unlock() }})
	defer m.Close()
	ctx := context.Background()
	m.SetLabel(2, "batch")
	_ = m.Acquire(ctx, 1, Point([]byte("a")), Exclusive, Block, Forever)
	_ = m.Acquire(ctx, 2, Point([]byte("b")), Exclusive, Block, Forever)
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 1, Point([]byte("b")), Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 1)
	err := m.Acquire(ctx, 2, Point([]byte("a")), Shared, Block, Forever)
	var de *DeadlockError
	if !errors.As(err, &de) || !errors.Is(err, ErrDeadlock) || !errors.Is(err, deadlock.ErrDeadlock) {
		t.Fatalf("got %v", err)
	}
	if de.Victim != 2 || len(de.Cycle) != 2 || de.Labels[2] != "batch" {
		t.Fatalf("bad report %+v", de)
	}
	want := `txkv: deadlock detected: txn 2 ("batch") wants shared on "a", held exclusive by txn 1; txn 1 wants exclusive on "b", held exclusive by txn 2 ("batch"); txn 2 ("batch") was chosen as the victim`
	if de.Error() != want {
		t.Fatalf("message:\n%s\nwant\n%s", de.Error(), want)
	}
	if e := de.Cycle[0]; e.Waiter != 2 || e.Holder != 1 || string(e.Key) != "a" || e.Mode != Shared || e.Soft || e.Range {
		t.Fatalf("edge %+v", e)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != de {
		t.Fatalf("OnDeadlock got %v", got)
	}
	mu.Unlock()
	m.ReleaseAll(2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m.ReleaseAll(1)
}

// TestPeriodicSweeper runs the real background sweeper with a short
// interval and waits (polling, with a deadline) for it to break a cycle.
func TestPeriodicSweeper(t *testing.T) {
	m := New(&Options{Detection: deadlock.Periodic, Interval: time.Millisecond})
	defer m.Close()
	ctx := context.Background()
	_ = m.Acquire(ctx, 1, Point([]byte("a")), Exclusive, Block, Forever)
	_ = m.Acquire(ctx, 2, Point([]byte("b")), Exclusive, Block, Forever)
	errs := make(chan error, 2)
	go func() { errs <- m.Acquire(ctx, 1, Point([]byte("b")), Exclusive, Block, Forever) }()
	go func() { errs <- m.Acquire(ctx, 2, Point([]byte("a")), Exclusive, Block, Forever) }()
	select {
	case err := <-errs:
		var de *DeadlockError
		if !errors.As(err, &de) || de.Victim != 2 {
			t.Fatalf("first to return: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("sweeper never broke the cycle")
	}
	m.ReleaseAll(2)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	m.ReleaseAll(1)
}

func TestRangeKeysAreCopied(t *testing.T) {
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	start, end := []byte("b"), []byte("d")
	if err := m.Acquire(ctx, 1, Span(start, end), Exclusive, Block, Forever); err != nil {
		t.Fatal(err)
	}
	key := []byte("c")
	if err := m.Acquire(ctx, 2, Point(key), Exclusive, NoWait, Forever); !errors.Is(err, ErrLockNotAvailable) {
		t.Fatalf("inside a held X range: %v", err)
	}
	start[0], end[0], key[0] = 'x', 'y', 'z'
	if !m.HeldByOther(2, []byte("c"), Shared) {
		t.Fatal("the range lost its bounds when the caller reused its slices")
	}
	if s := m.Stats(); s.NotAvailable != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// waitUntilWaitingOrDone returns once txn is queued on a lock, or its
// request has already finished (a timeout may beat the check).
func waitUntilWaitingOrDone(m *Manager, txn uint64, done chan error) {
	for {
		if _, ok := m.WaitingOn(txn); ok || len(done) > 0 {
			return
		}
		runtime.Gosched()
	}
}

// A lock timeout names the holders in its way with their labels, even when a holder rolls
// back right after the timeout fired (as under DeadlockOff, where both members of a deadlock
// time out at about the same moment): the error is labelled under the shard lock while the
// holder still holds, and ReleaseAll forgets a label only after releasing the locks.
func TestTimeoutKeepsHolderLabelWhenHolderLeaves(t *testing.T) {
	m := New(&Options{Detection: deadlock.Off})
	defer m.Close()
	ctx := context.Background()
	m.SetLabel(1, "alpha")
	m.SetLabel(2, "beta")
	if err := m.Acquire(ctx, 1, Point([]byte("a")), Exclusive, Block, Forever); err != nil {
		t.Fatal(err)
	}
	m.hooks.waited = func(txn uint64, err error) {
		if txn == 2 {
			m.ReleaseAll(1) // the holder gives up in the same instant
		}
	}
	err := m.Acquire(ctx, 2, Point([]byte("a")), Exclusive, Block, time.Millisecond)
	var le *LockError
	if !errors.As(err, &le) || !slices.Equal(le.Holders, []uint64{1}) {
		t.Fatalf("timeout = %v, want a *LockError naming txn 1", err)
	}
	if le.Labels[1] != "alpha" || le.Labels[2] != "beta" {
		t.Fatalf("%v: labels %v, want alpha and beta", err, le.Labels)
	}
	m.ReleaseAll(2)
}

// TestRequesterIsTheCloserWhenSearchesOverlap: under the Requester policy
// the victim is the transaction whose wait closed the cycle, even when the
// search that finds it is the earlier waiter's, run late. Txn 2 queues
// first; its search is held until txn 1 has queued and closed the cycle;
// txn 1's search is held until txn 2's is over. Txn 2's search finds the
// cycle and must abort txn 1, not itself.
func TestRequesterIsTheCloserWhenSearchesOverlap(t *testing.T) {
	m := New(&Options{Victim: deadlock.Requester})
	defer m.Close()
	ctx := context.Background()
	_ = m.Acquire(ctx, 1, Point([]byte("a")), Exclusive, Block, Forever)
	_ = m.Acquire(ctx, 2, Point([]byte("b")), Exclusive, Block, Forever)
	closerQueued, firstSearched := make(chan struct{}), make(chan struct{})
	m.hooks.searching = func(txn uint64) {
		if txn == 2 {
			<-closerQueued
			return
		}
		close(closerQueued)
		<-firstSearched
	}
	m.hooks.waiting = func(txn uint64) {
		if txn == 2 {
			close(firstSearched)
		}
	}
	first, closer := make(chan error, 1), make(chan error, 1)
	go func() { first <- m.Acquire(ctx, 2, Point([]byte("a")), Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 2)
	go func() { closer <- m.Acquire(ctx, 1, Point([]byte("b")), Exclusive, Block, Forever) }()
	select {
	case err := <-first:
		m.ReleaseAll(2)
		<-closer
		m.ReleaseAll(1)
		t.Fatalf("first waiter's wait ended first with %v; want the closer chosen as the victim", err)
	case err := <-closer:
		var de *DeadlockError
		if !errors.As(err, &de) || de.Victim != 1 {
			t.Fatalf("closer's wait = %v, want it chosen as the victim", err)
		}
	}
	m.ReleaseAll(1)
	if err := <-first; err != nil {
		t.Fatalf("first waiter = %v, want granted", err)
	}
	m.ReleaseAll(2)
}
