package wal

import (
	"sync"
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

// TestReleasedCommitterJoinsTheNextBatch: committer A's record is in a batch held for
// 200 ms (so the writer's gap is 25 ms), B queues meanwhile; when the batch ends A comes back
// 2 ms later. Under SyncAlways the writer waits for A, so B and A share the second batch;
// under SyncNone it does not wait, and each gets a batch of its own.
func TestReleasedCommitterJoinsTheNextBatch(t *testing.T) {
	for _, tc := range []struct {
		sync             SyncMode
		batches, gathers uint64
	}{{SyncAlways, 2, 1}, {SyncNone, 3, 0}} {
		t.Run(tc.sync.String(), func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, 1)
			var once sync.Once
			l := openTemp(t, &Options{Sync: tc.sync, BeforeCommit: func() error {
				once.Do(func() { entered <- struct{}{}; <-release })
				return nil
			}})
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
			close(release)
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
