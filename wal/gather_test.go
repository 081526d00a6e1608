package wal

import (
	"testing"
	"time"
)

// TestLoneCommitterIsNeverHeldBack: one committer appending in a loop finds every batch
// complete when it arrives (the writer expects only it), so the writer never gathers.
func TestLoneCommitterIsNeverHeldBack(t *testing.T) {
	l := openTemp(t, nil)
	for ts := uint64(1); ts <= 20; ts++ {
		if err := l.Append(rec(ts, "k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.Stats(); s.Gathers != 0 || s.Batches != 20 {
		t.Fatalf("gathers %d, batches %d: want 0 and 20", s.Gathers, s.Batches)
	}
}

// TestGatherIsBounded: a batch whose write took long (it waited 1 s for the test's hook, as
// it might wait for a checkpoint or a stalled disk) does not make the next batch wait long
// for a committer that never comes back: the gather ends after defaultMaxGather (2 ms), where
// an eighth of the last write would be 125 ms. B's record waits behind A's batch; A never
// appends again.
func TestGatherIsBounded(t *testing.T) {
	l, entered, release := openHeld(t, Options{})
	aDone := make(chan error, 1)
	go func() { aDone <- l.Append(rec(1, "a", "1")) }()
	<-entered
	b, err := l.Enqueue(rec(2, "b", "1"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	release()
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	if err := b.Wait(); err != nil {
		t.Fatal(err)
	}
	// A bound, not a speed: 2 ms plus one scheduling delay, against 125 ms unbounded.
	if s := l.Stats(); s.Gathers != 1 || s.GatherWait > 60*time.Millisecond {
		t.Fatalf("gathers %d for %v; want 1 (the writer expected A back), ended by the 2 ms bound",
			s.Gathers, s.GatherWait)
	}
}

// TestReleasedCommitterJoinsTheNextBatch: committer A's record is in a batch held for
// 200 ms (so the writer's gap is 25 ms, with the gather's bound raised for the test), B
// queues meanwhile; when the batch ends A comes back 2 ms later. Under SyncAlways the writer waits for A, so B and A share the second batch;
// under SyncNone it does not wait, and each gets a batch of its own.
func TestReleasedCommitterJoinsTheNextBatch(t *testing.T) {
	for _, tc := range []struct {
		sync             SyncMode
		batches, gathers uint64
	}{{SyncAlways, 2, 1}, {SyncNone, 3, 0}} {
		t.Run(tc.sync.String(), func(t *testing.T) {
			l, entered, release := openHeld(t, Options{Sync: tc.sync})
			l.maxGather = time.Second
			aDone := make(chan error, 1)
			go func() {
				err := l.Append(rec(1, "a", "1"))
				if err == nil {
					time.Sleep(2 * time.Millisecond) // A's next transaction
					err = l.Append(rec(3, "a", "2"))
				}
				aDone <- err
			}()
			<-entered
			b, err := l.Enqueue(rec(2, "b", "1"))
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(200 * time.Millisecond)
			release()
			if err := b.Wait(); err != nil {
				t.Fatal(err)
			}
			if err := <-aDone; err != nil {
				t.Fatal(err)
			}
			if s := l.Stats(); s.Batches != tc.batches || s.Records != 3 || s.Gathers != tc.gathers {
				t.Fatalf("batches %d, records %d, gathers %d: want %d, 3, %d",
					s.Batches, s.Records, s.Gathers, tc.batches, tc.gathers)
			}
		})
	}
}
