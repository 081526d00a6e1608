package mvcc

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// The durable watermark passes a ts only once it is done and durable, whatever order the
// marks come in; an aborted ts (DoneDurable) counts as durable; it never passes ReadTS.
func TestDurableWatermark(t *testing.T) {
	s := NewStore(nil, 0, nil)
	t1, t2, t3, t4 := s.Next(), s.Next(), s.Next(), s.Next()
	s.MarkDurable([]uint64{t2}) // durable before it is done: waits for it (and for t1)
	s.Done(t2)
	eq(t, uint64(0), s.DurableTS())
	s.Done(t1)
	eq(t, uint64(2), s.ReadTS())
	eq(t, uint64(0), s.DurableTS()) // t1 done, not durable: t2 waits behind it
	s.MarkDurable([]uint64{t1})
	eq(t, uint64(2), s.DurableTS())
	s.DoneDurable(t4) // aborted above a pending ts: waits for t3
	eq(t, uint64(2), s.DurableTS())
	s.Done(t3)
	eq(t, uint64(4), s.ReadTS())
	eq(t, uint64(2), s.DurableTS()) // t3 visible, not durable
	s.MarkDurable([]uint64{t3})
	eq(t, uint64(4), s.DurableTS())
}

// WaitDurable waits for the watermark, not for the ts alone: a durable ts above a pending one
// is not enough.
func TestWaitDurable(t *testing.T) {
	s := NewStore(nil, 0, nil)
	ctx := context.Background()
	t1, t2 := s.Next(), s.Next()
	res := make(chan error, 1)
	go func() { res <- s.WaitDurable(ctx, t2) }()
	s.Done(t1)
	s.Done(t2)
	s.MarkDurable([]uint64{t2})
	select {
	case err := <-res:
		t.Fatalf("WaitDurable(%d) returned %v while ts %d was not durable", t2, err, t1)
	default:
	}
	s.MarkDurable([]uint64{t1})
	noErr(t, <-res)
	noErr(t, s.WaitDurable(ctx, t2)) // at once now
	isErr(t, s.WaitDurable(ctx, t2+1), ErrUnknownTS)
}

// FailDurable ends every wait above the watermark with its error, now and later; versions
// below the watermark stay readable without waiting.
func TestFailDurable(t *testing.T) {
	s := NewStore(nil, 0, nil)
	ctx := context.Background()
	t1 := commit(s, put("a", "1"))
	t2 := s.Next()
	s.Install(t2, []Write{put("a", "2")})
	s.Done(t2) // visible, never durable
	res := make(chan error, 1)
	go func() { res <- s.WaitDurable(ctx, t2) }()
	waitFor(t, func() bool {
		s.orc.Lock()
		defer s.orc.Unlock()
		return len(s.orc.dwait) == 1
	})
	failed := errors.New("injected log failure")
	s.FailDurable(failed)
	isErr(t, <-res, failed)
	isErr(t, s.WaitDurable(ctx, t2), failed)
	noErr(t, s.WaitDurable(ctx, t1))
	s.MarkDurable([]uint64{t2}) // too late: the failure sticks
	eq(t, t1, s.DurableTS())
}

func TestWaitDurableCancel(t *testing.T) {
	s := NewStore(nil, 0, nil)
	ts := s.Next()
	s.Done(ts)
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- s.WaitDurable(ctx, ts) }()
	waitFor(t, func() bool {
		s.orc.Lock()
		defer s.orc.Unlock()
		return len(s.orc.dwait) == 1
	})
	cancel()
	isErr(t, <-res, context.Canceled)
	s.MarkDurable([]uint64{ts})
	noErr(t, s.WaitDurable(context.Background(), ts))
}

// GC never passes the durable watermark. Were it to, it would drop a durable version that a
// newer, not yet durable one supersedes; a checkpoint (which writes only durable versions)
// would then write an even older version of the key and truncate the log record of the dropped
// one, and a crash that lost the newest version would tear the dropped version's transaction.
// (The kill -9 crash test found exactly this.)
func TestGCKeepsTheNewestDurableVersion(t *testing.T) {
	s := NewStore(nil, 0, nil)
	commit(s, put("a", "1"))                      // 1: durable
	t2 := commit(s, put("a", "2"), put("x", "2")) // 2: durable, same transaction as x@2
	t3 := s.Next()
	s.Install(t3, []Write{put("a", "3")})
	s.Done(t3) // visible, not durable
	eq(t, t2, s.GCWatermark())
	s.GC()
	eq(t, "3:3 2:2", chainOf(s, "a"))
	var got []string
	for e := range s.CheckpointEntries(s.DurableTS()) {
		got = append(got, string(e.Key)+"@"+string(e.Value))
	}
	eq(t, "a@2 x@2", strings.Join(got, " "))
	s.MarkDurable([]uint64{t3})
	s.GC()
	eq(t, "3:3", chainOf(s, "a"))
}

// A snapshot's Seen is the newest memtable version that decided a read: a value, a tombstone
// (a read of a deleted key), or a tombstone an iterator stepped over.
func TestSnapshotSeen(t *testing.T) {
	s := NewStore(nil, 0, nil)
	commit(s, put("a", "1"))  // 1
	commit(s, put("b", "1"))  // 2
	t3 := commit(s, del("b")) // 3
	sn := s.Snapshot()
	defer sn.Close()
	eq(t, uint64(0), sn.Seen())
	_, _, _, err := sn.Get([]byte("a"))
	noErr(t, err)
	eq(t, uint64(1), sn.Seen())
	_, _, ok, err := sn.Get([]byte("b"))
	noErr(t, err)
	eq(t, false, ok)
	eq(t, t3, sn.Seen())

	sn2 := s.Snapshot()
	defer sn2.Close()
	it := sn2.Iter([]byte("b"), nil, nil)
	for it.Next() {
	}
	it.Close()
	eq(t, t3, sn2.Seen()) // the scan returned nothing, decided by b's tombstone
}
