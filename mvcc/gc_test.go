package mvcc

import (
	"fmt"
	"strings"
	"testing"
)

func chainOf(s *Store, key string) string {
	c := s.lookup([]byte(key))
	if c == nil {
		return "<no key>"
	}
	var out []string
	for v := c.head.Load(); v != nil; v = v.next.Load() {
		if v.tomb {
			out = append(out, fmt.Sprintf("%d:del", v.ts))
		} else {
			out = append(out, fmt.Sprintf("%d:%s", v.ts, v.value))
		}
	}
	return strings.Join(out, " ")
}

func TestGCKeepsWhatSnapshotsNeed(t *testing.T) {
	s := NewStore(nil, 0, nil)
	commit(s, put("a", "1")) // 1
	commit(s, put("a", "2")) // 2
	sn2 := s.Snapshot()
	commit(s, put("a", "3"), put("d", "x")) // 3
	commit(s, put("a", "4"), del("d"))      // 4
	eq(t, uint64(2), s.GCWatermark())

	eq(t, 1, s.GC()) // a@1 only: sn2 needs a@2
	eq(t, "4:4 3:3 2:2", chainOf(s, "a"))
	eq(t, "4:del 3:x", chainOf(s, "d"))
	eq(t, "2@2", getStr(t, sn2, "a"))

	sn2.Close()
	eq(t, uint64(4), s.GCWatermark())
	eq(t, 4, s.GC()) // a@3, a@2, and over EmptyBase d's tombstone with d@3
	eq(t, "4:4", chainOf(s, "a"))
	eq(t, "<no key>", chainOf(s, "d"))
	st := s.Stats()
	eq(t, 1, st.Keys)
	eq(t, 1, st.Versions)
	// a@1, allocated with a's chain (alloc.go), is unlinked but still held and charged.
	eq(t, int64(len("a")+keyOverhead+len("4")+versionOverhead+len("1")+versionOverhead), st.MemBytes)
	sn := s.Snapshot()
	defer sn.Close()
	eq(t, "<none>", getStr(t, sn, "d"))
	eq(t, 0, s.GC())
}

// Over a real base, a tombstone must survive GC until a checkpoint has removed the key from the
// base: dropping it earlier would resurrect the checkpointed value.
func TestGCTombstoneOverRealBase(t *testing.T) {
	b := newMapBase()
	b.m["k"] = baseEntry{[]byte("old"), 1}
	s := NewStore(b, 1, nil)
	commit(s, del("k")) // 2
	s.GC()
	eq(t, "2:del", chainOf(s, "k"))
	sn := s.Snapshot()
	eq(t, "<none>", getStr(t, sn, "k"))
	sn.Close()

	eq(t, uint64(2), checkpoint(s, b))
	eq(t, "<no key>", chainOf(s, "k")) // no reader was open: removed at once
	_, inBase := b.m["k"]
	eq(t, false, inBase)
	sn = s.Snapshot()
	defer sn.Close()
	eq(t, "<none>", getStr(t, sn, "k"))
	eq(t, int64(0), s.MemBytes())
}

// TestGCWatermarkBelowSnapshots checks invariant 2 as snapshots open and close.
func TestGCWatermarkBelowSnapshots(t *testing.T) {
	rng := newRand(testSeed(t))
	s := NewStore(nil, 0, nil)
	var open []*Snapshot
	prev := uint64(0)
	for i := 0; i < 500; i++ {
		switch rng.IntN(3) {
		case 0:
			commit(s, put("k", "v"))
		case 1:
			open = append(open, s.Snapshot())
		default:
			if len(open) > 0 {
				j := rng.IntN(len(open))
				open[j].Close()
				open = append(open[:j], open[j+1:]...)
			}
		}
		wm := s.GCWatermark()
		if wm < prev {
			t.Fatalf("GCWatermark went back from %d to %d", prev, wm)
		}
		prev = wm
		for _, sn := range open {
			if wm > sn.TS() {
				t.Fatalf("GCWatermark %d above open snapshot %d", wm, sn.TS())
			}
		}
		if wm > s.ReadTS() {
			t.Fatalf("GCWatermark %d above ReadTS %d", wm, s.ReadTS())
		}
	}
	for _, sn := range open {
		sn.Close()
	}
}

// TestFlushedWaitsForOldReaders: an iterator that read the (empty) base before a checkpoint must
// still find the flushed versions in the memtable; they leave only when it closes.
func TestFlushedWaitsForOldReaders(t *testing.T) {
	b := newMapBase()
	s := NewStore(b, 0, &Options{ScanChunk: 1})
	commit(s, put("a", "1"), put("b", "2"), put("c", "3")) // 1
	old := s.Snapshot()
	it := old.Iter(nil, nil, nil)
	eq(t, true, it.Next()) // base scanned: empty and exhausted; memtable chunk holds "a"
	eq(t, "a", string(it.Key()))

	latest := s.Latest() // pinned before Flushed too
	eq(t, uint64(1), checkpoint(s, b))
	st := s.Stats()
	eq(t, 3, st.Versions) // removal deferred
	eq(t, 1, st.PendingFlushes)
	eq(t, uint64(0), st.FlushedUpTo)
	s.GC() // GC must not remove them either
	eq(t, 3, s.Stats().Versions)

	rest, err := collectIter(it)
	noErr(t, err)
	eq(t, "b=2@1 c=3@1", strings.Join(rest, " "))

	fresh := s.Snapshot() // pins the new epoch: does not hold the removal back
	old.Close()
	eq(t, 3, s.Stats().Versions) // latest still pins the old epoch
	latest.Close()
	st = s.Stats()
	eq(t, 0, st.Versions)
	eq(t, 0, st.Keys)
	eq(t, 0, st.PendingFlushes)
	eq(t, uint64(1), st.FlushedUpTo)
	rows, err := collectIter(fresh.Iter(nil, nil, nil))
	noErr(t, err)
	eq(t, "a=1@1 b=2@1 c=3@1", strings.Join(rows, " "))
	eq(t, "3@1", getStr(t, fresh, "c"))
	fresh.Close()
}

func TestFlushedKeepsNewerVersions(t *testing.T) {
	b := newMapBase()
	s := NewStore(b, 0, nil)
	commit(s, put("k", "1")) // 1
	commit(s, put("k", "2")) // 2
	sn := s.Snapshot()       // at 2
	commit(s, put("k", "3")) // 3
	eq(t, uint64(2), checkpoint(s, b))
	sn.Close()
	eq(t, "3:3", chainOf(s, "k"))
	eq(t, uint64(2), b.m["k"].version)
	sn = s.Snapshot()
	defer sn.Close()
	eq(t, "3@3", getStr(t, sn, "k"))
	var got []string
	for e := range s.CheckpointEntries(2) {
		got = append(got, string(e.Key))
	}
	eq(t, 0, len(got))
}

func TestCheckpointEntries(t *testing.T) {
	s := NewStore(nil, 0, &Options{GCChunk: 2})
	commit(s, put("a", "1"), put("b", "1"), put("c", "1")) // 1
	commit(s, put("a", "2"), del("b"))                     // 2
	commit(s, put("c", "3"), put("d", "3"))                // 3
	var got []string
	for e := range s.CheckpointEntries(2) {
		got = append(got, fmt.Sprintf("%s=%s@%d/%v", e.Key, e.Value, e.Version, e.Delete))
	}
	eq(t, "a=2@2/false b=@2/true c=1@1/false", strings.Join(got, " "))
	n := 0
	for range s.CheckpointEntries(3) {
		n++
		break // early stop is honoured
	}
	eq(t, 1, n)
}

// TestFlushedTombstones: after a checkpoint that applied deletions, the tombstones leave the
// memtable (with the versions under them) once the readers that pinned before it have closed,
// while values stay cached; reads answer the same before and after.
func TestFlushedTombstones(t *testing.T) {
	b := newMapBase()
	s := NewStore(b, 0, nil)
	commit(s, put("job/1", "x"), put("job/2", "y"), put("keep", "v")) // 1
	commit(s, del("job/1"), del("job/2"))                             // 2
	upTo := s.GCWatermark()
	var entries []Entry
	for e := range s.CheckpointEntries(upTo) {
		entries = append(entries, e)
	}
	b.apply(entries)
	old := s.Snapshot() // pinned before the release: holds it back
	s.FlushedTombstones(upTo)
	eq(t, 3, s.Stats().Keys)
	_, _, ok, err := old.Get([]byte("job/1"))
	noErr(t, err)
	eq(t, false, ok)
	old.Close()
	st := s.Stats()
	eq(t, 1, st.Keys)                // only "keep" is left in the memtable
	eq(t, uint64(0), st.FlushedUpTo) // values are not released
	eq(t, "1:v", chainOf(s, "keep")) // and stay cached
	sn := s.Snapshot()
	defer sn.Close()
	_, _, ok, err = sn.Get([]byte("job/2"))
	noErr(t, err)
	eq(t, false, ok)
	rows, err := collectIter(sn.Iter(nil, nil, nil))
	noErr(t, err)
	eq(t, "keep=v@1", strings.Join(rows, " "))
}
