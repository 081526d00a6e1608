package mvcc

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOracleStartsAfterLastTS(t *testing.T) {
	s := NewStore(nil, 10, nil)
	eq(t, uint64(10), s.ReadTS())
	eq(t, uint64(11), s.Next())
	eq(t, uint64(10), s.ReadTS())
	eq(t, uint64(10), s.GCWatermark())
}

func TestOracleOutOfOrderDone(t *testing.T) {
	s := NewStore(nil, 0, nil)
	for i := uint64(1); i <= 5; i++ {
		eq(t, i, s.Next())
	}
	steps := []struct {
		done, want uint64
	}{
		{3, 0}, // 1, 2 pending
		{1, 1}, // 2 pending
		{5, 1},
		{2, 3}, // 4 pending
		{2, 3}, // duplicate: ignored
		{9, 3}, // never allocated: ignored
		{4, 5},
	}
	for _, st := range steps {
		s.Done(st.done)
		eq(t, st.want, s.ReadTS(), "after Done(%d)", st.done)
	}
	eq(t, 0, s.Stats().Pending)
	eq(t, uint64(6), s.Next())
	eq(t, 1, s.Stats().Pending)
}

// TestOracleConcurrent checks invariant 4: ReadTS only moves forward and never passes a ts
// that is not done, with many goroutines finishing timestamps in random order.
func TestOracleConcurrent(t *testing.T) {
	const workers, perWorker = 8, 2000
	s := NewStore(nil, 0, nil)
	var marked [workers*perWorker + 1]atomic.Bool // marked[ts]: Done(ts) was called or is running
	stop := make(chan struct{})
	var checkErr atomic.Value
	var checker sync.WaitGroup
	checker.Add(1)
	go func() {
		defer checker.Done()
		var prev uint64
		for {
			select {
			case <-stop:
				return
			default:
			}
			r := s.ReadTS()
			if r < prev {
				checkErr.Store("ReadTS moved backwards")
				return
			}
			for ts := prev + 1; ts <= r; ts++ {
				if !marked[ts].Load() {
					checkErr.Store("ReadTS passed a pending ts")
					return
				}
			}
			prev = r
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held []uint64
			for i := 0; i < perWorker; i++ {
				held = append(held, s.Next())
				if len(held) == 3 || i == perWorker-1 { // finish in reverse: out of order
					for j := len(held) - 1; j >= 0; j-- {
						marked[held[j]].Store(true)
						s.Done(held[j])
					}
					held = held[:0]
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	checker.Wait()
	if msg := checkErr.Load(); msg != nil {
		t.Fatal(msg)
	}
	eq(t, uint64(workers*perWorker), s.ReadTS())
}

func TestWaitVisible(t *testing.T) {
	s := NewStore(nil, 0, nil)
	ctx := context.Background()
	t1, t2 := s.Next(), s.Next()
	noErr(t, s.WaitVisible(ctx, 0))

	res := make(chan error, 1)
	go func() { res <- s.WaitVisible(ctx, t2) }()
	waitFor(t, func() bool { return s.Stats().Waiters == 1 })

	s.Done(t2) // t1 still pending: the watermark cannot pass it
	eq(t, uint64(0), s.ReadTS())
	select {
	case err := <-res:
		t.Fatalf("WaitVisible returned %v before ts %d was visible", err, t2)
	default:
	}
	s.Done(t1)
	noErr(t, <-res)
	eq(t, 0, s.Stats().Waiters)
}

func TestWaitVisibleCancel(t *testing.T) {
	s := NewStore(nil, 0, nil)
	ts := s.Next()
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- s.WaitVisible(ctx, ts) }()
	waitFor(t, func() bool { return s.Stats().Waiters == 1 })
	cancel()
	isErr(t, <-res, context.Canceled)
	eq(t, 0, s.Stats().Waiters)
	s.Done(ts)
	noErr(t, s.WaitVisible(context.Background(), ts))
}

func TestWaitVisibleUnknownTS(t *testing.T) {
	s := NewStore(nil, 3, nil)
	err := s.WaitVisible(context.Background(), 4)
	isErr(t, err, ErrUnknownTS)
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("condition not reached before the deadline"))
		}
		time.Sleep(time.Millisecond) // polling an introspection API, not synchronizing
	}
}
