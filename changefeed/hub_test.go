package changefeed

import (
	"fmt"
	"testing"

	"github.com/txkv/txkv/mvcc"
)

// newHub starts a hub over a fresh in-memory store, as an in-memory database has them.
func newHub(tb testing.TB, ringEvents int) (*mvcc.Store, *Hub) {
	tb.Helper()
	s := mvcc.NewStore(mvcc.EmptyBase{}, 0, nil)
	h := New(Config{Watermark: s, Horizon: s.ReadTS(), RingEvents: ringEvents})
	tb.Cleanup(h.Close)
	return s, h
}

// The hub releases records in ts order only as far as the watermark, whatever the order in
// which commits publish them: ts 2 published and done before ts 1 waits for ts 1.
func TestWatchHubReleasesInTSOrder(t *testing.T) {
	s, h := newHub(t, 0)
	w := h.register(nil)
	defer h.unregister(w)
	t1, t2 := s.Next(), s.Next()
	h.Publish(t2, []mvcc.Write{{Key: []byte("b"), Value: []byte("2")}})
	s.DoneDurable(t2)
	if next := h.release(); next != t2 {
		t.Fatalf("release with ts %d pending below the watermark: next pending %d, want %d", t1, next, t2)
	}
	if p, err := h.pull(w, t1, nil); err != nil || len(p.recs) != 0 || !p.wait {
		t.Fatalf("before ts %d is done: %+v, %v", t1, p, err)
	}
	h.Publish(t1, []mvcc.Write{{Key: []byte("a"), Value: []byte("1")}})
	s.DoneDurable(t1)
	if next := h.release(); next != 0 {
		t.Fatalf("still pending: %d", next)
	}
	p, err := h.pull(w, t1, nil)
	if err != nil || len(p.recs) != 2 || p.recs[0].ts != t1 || p.recs[1].ts != t2 || p.cursor != t2+1 {
		t.Fatalf("after both: %+v, %v", p, err)
	}
}

// A commit that is done (visible) but not yet durable stays pending: Watch delivers only
// what a crash cannot take back. Marking it durable releases it.
func TestWatchHubReleasesOnlyDurable(t *testing.T) {
	s, h := newHub(t, 0)
	w := h.register(nil)
	defer h.unregister(w)
	ts := s.Next()
	h.Publish(ts, []mvcc.Write{{Key: []byte("a"), Value: []byte("1")}})
	s.Done(ts)
	if s.ReadTS() < ts || s.DurableTS() >= ts {
		t.Fatalf("after Done: ReadTS %d, DurableTS %d, ts %d", s.ReadTS(), s.DurableTS(), ts)
	}
	if next := h.release(); next != ts {
		t.Fatalf("a visible, not durable commit was released (next pending %d, want %d)", next, ts)
	}
	if p, err := h.pull(w, ts, nil); err != nil || len(p.recs) != 0 {
		t.Fatalf("delivered before durable: %+v, %v", p, err)
	}
	s.MarkDurable([]uint64{ts})
	if next := h.release(); next != 0 {
		t.Fatalf("still pending after MarkDurable: %d", next)
	}
	if p, err := h.pull(w, ts, nil); err != nil || len(p.recs) != 1 {
		t.Fatalf("after MarkDurable: %+v, %v", p, err)
	}
}

// Eviction moves the horizon; a memory DB refuses a cursor at or below it, and the prefix
// index tracks the distinct lengths in use.
func TestWatchHubEvictionAndIndex(t *testing.T) {
	s, h := newHub(t, 2)
	a, ab, ab2 := h.register([]byte("a")), h.register([]byte("ab")), h.register([]byte("ab"))
	if fmt.Sprint(h.mu.lengths) != "[1 2]" {
		t.Fatalf("lengths %v", h.mu.lengths)
	}
	h.unregister(a)
	if fmt.Sprint(h.mu.lengths) != "[2]" {
		t.Fatalf("lengths after unregister %v", h.mu.lengths)
	}
	for i := range 5 {
		ts := s.Next()
		h.Publish(ts, []mvcc.Write{{Key: fmt.Appendf(nil, "k%d", i)}})
		s.DoneDurable(ts)
	}
	h.release()
	h.mu.Lock() // the sequencer may be releasing too
	horizon, live := h.mu.horizon, len(h.mu.ring)-h.mu.start
	h.mu.Unlock()
	if horizon != 3 || live != 2 {
		t.Fatalf("horizon %d, %d live records", horizon, live)
	}
	if _, err := h.pull(ab, 3, nil); err == nil {
		t.Fatal("pull below the horizon of an in-memory ring succeeded")
	}
	h.unregister(ab)
	h.unregister(ab2)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.mu.watchers != 0 || len(h.mu.byPrefix) != 0 || len(h.mu.lengths) != 0 {
		t.Fatalf("%d watchers, index %v", h.mu.watchers, h.mu.byPrefix)
	}
}

// BenchmarkWatchPublish is the hub's share of one commit (publish, then release in the
// sequencer) with 0 and 1,000 caught-up watchers on other prefixes.
//
//	go test -run '^$' -bench BenchmarkWatchPublish -count 5 ./changefeed
func BenchmarkWatchPublish(b *testing.B) {
	for _, n := range []int{0, 1000} {
		b.Run(fmt.Sprintf("watchers=%d", n), func(b *testing.B) {
			s, h := newHub(b, 0)
			for i := range n {
				w := h.register(fmt.Appendf(nil, "idle/%04d/", i))
				if _, err := h.pull(w, 1, nil); err != nil { // caught up: tracked by the index
					b.Fatal(err)
				}
			}
			writes := []mvcc.Write{{Key: []byte("bench/000/key"), Value: []byte("value")}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ts := s.Next()
				h.Publish(ts, writes)
				s.DoneDurable(ts)
				h.release()
			}
		})
	}
}

func TestWatchNilContext(t *testing.T) {
	s, h := newHub(t, 0)
	ts := s.Next()
	h.Publish(ts, []mvcc.Write{{Key: []byte("k"), Value: []byte("v")}})
	s.DoneDurable(ts)
	//lint:ignore SA1012 a nil context is bad input the library must survive
	for ev, err := range h.Watch(nil, nil, 1) {
		if err != nil || string(ev.Key) != "k" {
			t.Fatalf("%v %v", ev, err)
		}
		break
	}
}
