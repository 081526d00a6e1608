package changefeed

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/txkv/txkv/mvcc"
	"github.com/txkv/txkv/wal"
)

// fakeTail is a log tail holding the records from its first one on; older ones are compacted.
type fakeTail struct{ recs []wal.Record }

func (t *fakeTail) ReadTail(from, to uint64, maxRecords int) ([]wal.Record, error) {
	if len(t.recs) > 0 && from < t.recs[0].TS {
		return nil, fmt.Errorf("%w: from %d", wal.ErrCompacted, from)
	}
	var out []wal.Record
	for _, r := range t.recs {
		if r.TS >= from && r.TS <= to && len(out) < maxRecords {
			out = append(out, r)
		}
	}
	return out, nil
}

// commitN publishes n one-write commits k0, k1, … to h and to tail, makes them durable and
// releases them.
func commitN(s *mvcc.Store, h *Hub, tail *fakeTail, n int) {
	for i := range n {
		ts := s.Next()
		key := fmt.Appendf(nil, "k%d", i)
		tail.recs = append(tail.recs, wal.Record{TS: ts, Ops: []wal.Op{{Key: key, Value: key}}})
		h.Publish(ts, []mvcc.Write{{Key: key, Value: key}})
		s.DoneDurable(ts)
	}
	h.release()
}

// A watcher whose start is behind the ring reads the log's tail up to the ring's horizon,
// then the ring: every event once, in order.
func TestWatchCatchesUpFromTail(t *testing.T) {
	s := mvcc.NewStore(mvcc.EmptyBase{}, 0, nil)
	tail := &fakeTail{}
	h := New(Config{Watermark: s, Tail: tail, RingEvents: 2})
	defer h.Close()
	commitN(s, h, tail, 5)
	var got []string
	for ev, err := range h.Watch(context.Background(), nil, 1) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s@%d", ev.Key, ev.Version))
		if len(got) == 5 {
			break
		}
	}
	if fmt.Sprint(got) != "[k0@1 k1@2 k2@3 k3@4 k4@5]" {
		t.Fatalf("events %v", got)
	}

	tail.recs = tail.recs[1:] // a checkpoint deleted ts 1
	for _, err := range h.Watch(context.Background(), nil, 1) {
		if !errors.Is(err, wal.ErrCompacted) {
			t.Fatalf("from a compacted version: %v, want ErrCompacted", err)
		}
		break
	}
}

// If the log fails, what is pending is never delivered and every watcher ends with the
// log's error.
func TestWatchEndsWhenTheLogFails(t *testing.T) {
	s, h := newHub(t, 0)
	ts := s.Next()
	h.Publish(ts, []mvcc.Write{{Key: []byte("k"), Value: []byte("v")}})
	s.Done(ts) // visible, never durable
	failed := errors.New("fsync failed")
	s.FailDurable(failed)
	for ev, err := range h.Watch(context.Background(), nil, 1) {
		if !errors.Is(err, failed) {
			t.Fatalf("got %v, %v; want the log's error", ev, err)
		}
	}
}
