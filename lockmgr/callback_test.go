package lockmgr

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/txkv/txkv/deadlock"
)

// TestOnDeadlockPanicLeavesNoLock: an OnDeadlock callback that panics
// unwinds the Acquire whose wait closed the cycle - here txn 1, which is
// not the victim (txn 2, the youngest, is). Txn 1's request was queued when
// the callback ran; it must be withdrawn on the way out, not left as a
// phantom waiter that the victim's release would turn into a lock nobody
// holds. The victim still gets its error, and others proceed.
func TestOnDeadlockPanicLeavesNoLock(t *testing.T) {
	m := New(&Options{OnDeadlock: func(*DeadlockError) { panic("callback failed") }})
	defer m.Close()
	ctx := context.Background()
	a, b := Point([]byte("a")), Point([]byte("b"))
	must(t, m.Acquire(ctx, 1, a, Exclusive, Block, Forever))
	must(t, m.Acquire(ctx, 2, b, Exclusive, Block, Forever))
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, a, Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 2)

	recovered := func() (r any) {
		defer func() { r = recover() }()
		_ = m.Acquire(ctx, 1, b, Exclusive, Block, Forever)
		return nil
	}()
	if recovered != "callback failed" {
		t.Fatalf("Acquire did not propagate the callback's panic: %v", recovered)
	}
	var de *DeadlockError
	if err := <-done; !errors.As(err, &de) || de.Victim != 2 {
		t.Fatalf("victim's Acquire: %v", err)
	}
	if info, ok := m.WaitingOn(1); ok {
		t.Fatalf("txn 1 still waits after its Acquire panicked: %+v", info)
	}
	wantLocks(t, m, `"a": txn 1 X granted`, `"b": txn 2 X granted`)

	m.ReleaseAll(2) // b must go to nobody
	wantLocks(t, m, `"a": txn 1 X granted`)
	must(t, m.Acquire(ctx, 3, b, Exclusive, NoWait, Forever))
	m.ReleaseAll(1)
	must(t, m.Acquire(ctx, 3, a, Exclusive, NoWait, Forever))
	m.ReleaseAll(3)
	wantLocks(t, m)
	if w, e := m.graph.Len(); w+e != 0 {
		t.Fatalf("graph not empty: %d waiters, %d edges", w, e)
	}
	if s := m.Stats(); s.Deadlocks != 1 {
		t.Fatalf("Deadlocks = %d, want 1", s.Deadlocks)
	}
}

// TestOnDeadlockPanicVictims: when the panicking Acquire is the victim
// itself (Requester policy), nothing is left either, and every victim of
// the resolution is still reported.
func TestOnDeadlockPanicVictims(t *testing.T) {
	var mu sync.Mutex
	var seen []uint64
	m := New(&Options{Victim: deadlock.Requester, OnDeadlock: func(e *DeadlockError) {
		mu.Lock()
		seen = append(seen, e.Victim)
		mu.Unlock()
		panic("callback failed")
	}})
	defer m.Close()
	ctx := context.Background()
	must(t, m.Acquire(ctx, 1, Point([]byte("a")), Exclusive, Block, Forever))
	must(t, m.Acquire(ctx, 2, Point([]byte("b")), Exclusive, Block, Forever))
	done := make(chan error, 1)
	go func() { done <- m.Acquire(ctx, 2, Point([]byte("a")), Exclusive, Block, Forever) }()
	waitUntilWaiting(t, m, 2)
	func() {
		defer func() { _ = recover() }()
		_ = m.Acquire(ctx, 1, Point([]byte("b")), Exclusive, Block, Forever)
	}()
	mu.Lock()
	if !slices.Equal(seen, []uint64{1}) {
		t.Fatalf("OnDeadlock saw %v, want [1]", seen)
	}
	mu.Unlock()
	m.ReleaseAll(1)
	must(t, <-done)
	wantLocks(t, m, `"a": txn 2 X granted`, `"b": txn 2 X granted`)
	m.ReleaseAll(2)
}

// TestNotifyAfterPanic: a callback that panics for one victim does not
// keep the others from being reported; the first panic goes on.
func TestNotifyAfterPanic(t *testing.T) {
	var got []uint64
	m := New(&Options{OnDeadlock: func(e *DeadlockError) {
		got = append(got, e.Victim)
		if e.Victim == 1 {
			panic("first")
		}
	}})
	defer m.Close()
	r := func() (r any) {
		defer func() { r = recover() }()
		m.notify([]*DeadlockError{{Victim: 1}, {Victim: 2}, {Victim: 3}})
		return nil
	}()
	if r != "first" || !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Fatalf("panic %v, reported %v", r, got)
	}
}
