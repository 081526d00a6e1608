package mvcc

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func getStr(t *testing.T, sn *Snapshot, key string) string {
	t.Helper()
	v, ver, ok, err := sn.Get([]byte(key))
	noErr(t, err)
	if !ok {
		if ver != 0 {
			t.Fatalf("Get(%q): not found but version %d", key, ver)
		}
		return "<none>"
	}
	return fmt.Sprintf("%s@%d", v, ver)
}

func TestGetVersionsAndFallThrough(t *testing.T) {
	b := newMapBase()
	b.m["a"] = baseEntry{[]byte("base-a"), 2}
	b.m["z"] = baseEntry{[]byte("base-z"), 3}
	s := NewStore(b, 5, nil)

	sn5 := s.Snapshot()
	defer sn5.Close()
	commit(s, put("a", "a6"), put("b", "b6")) // 6
	sn6 := s.Snapshot()
	defer sn6.Close()
	commit(s, del("a"), put("z", "z7")) // 7
	sn7 := s.Snapshot()
	defer sn7.Close()

	for _, c := range []struct {
		sn        *Snapshot
		key, want string
	}{
		{sn5, "a", "base-a@2"}, {sn5, "b", "<none>"}, {sn5, "z", "base-z@3"},
		{sn6, "a", "a6@6"}, {sn6, "b", "b6@6"}, {sn6, "z", "base-z@3"},
		{sn7, "a", "<none>"}, {sn7, "b", "b6@6"}, {sn7, "z", "z7@7"},
		{sn7, "missing", "<none>"},
	} {
		eq(t, c.want, getStr(t, c.sn, c.key), "snapshot %d key %s", c.sn.TS(), c.key)
	}
	eq(t, uint64(7), s.NewestVersion([]byte("a")))
	eq(t, uint64(0), s.NewestVersion([]byte("missing")))
	eq(t, true, s.HasNewer([]byte("a"), 6))
	eq(t, false, s.HasNewer([]byte("a"), 7))
	eq(t, false, s.HasNewer([]byte("nope"), 0))
	eq(t, true, s.HasNewerInRange([]byte("y"), nil, 6))
	eq(t, false, s.HasNewerInRange([]byte("b"), []byte("z"), 6))
	eq(t, true, s.HasNewerInRange(nil, []byte("b"), 6))
}

func TestLatestSeesInstalledBeforeDone(t *testing.T) {
	s := NewStore(nil, 0, nil)
	commit(s, put("k", "v1"))
	ts := s.Next()
	s.Install(ts, []Write{put("k", "v2")})
	snap, latest := s.Snapshot(), s.Latest()
	defer snap.Close()
	defer latest.Close()
	eq(t, uint64(math.MaxUint64), latest.TS())
	eq(t, "v1@1", getStr(t, snap, "k"))
	eq(t, "v2@2", getStr(t, latest, "k"))
	eq(t, 1, s.Stats().ActiveSnapshots)
	eq(t, 2, s.Stats().Pinned)
	s.DoneDurable(ts)
}

func TestInstallCopiesAndOrdersVersions(t *testing.T) {
	s := NewStore(nil, 0, nil)
	key, val := []byte("k"), []byte("v5")
	s.Install(5, []Write{{Key: key, Value: val}})
	key[0], val[0] = 'X', 'X'                              // the store must have copied
	s.Install(3, []Write{put("k", "v3")})                  // out of order: linked below 5
	s.Install(4, []Write{put("k", "v4"), put("k", "v4b")}) // same ts twice: the later wins
	for ts := uint64(1); ts <= 5; ts++ {
		s.Next()
		s.DoneDurable(ts)
	}
	sn := s.Snapshot()
	defer sn.Close()
	eq(t, "v5@5", getStr(t, sn, "k"))
	eq(t, 3, s.Stats().Versions)
	var got []string
	for v := s.lookup([]byte("k")).head.Load(); v != nil; v = v.next.Load() {
		got = append(got, fmt.Sprintf("%d:%s", v.ts, v.value))
	}
	eq(t, "5:v5 4:v4b 3:v3", strings.Join(got, " "))
}

func TestReplayMovesOracle(t *testing.T) {
	s := NewStore(nil, 2, nil)
	s.Replay(3, []Write{put("a", "1")})
	s.Replay(4, []Write{put("a", "2"), put("b", "1")})
	eq(t, uint64(4), s.ReadTS())
	eq(t, uint64(5), s.Next())
	sn := s.Snapshot()
	defer sn.Close()
	eq(t, "2@4", getStr(t, sn, "a"))
}

func TestClosedSnapshot(t *testing.T) {
	s := NewStore(nil, 0, nil)
	sn := s.Snapshot()
	sn.Close()
	sn.Close() // idempotent
	_, _, _, err := sn.Get([]byte("k"))
	isErr(t, err, ErrSnapshotClosed)
	it := sn.Iter(nil, nil, nil)
	eq(t, false, it.Next())
	isErr(t, it.Err(), ErrSnapshotClosed)
	st := s.Stats()
	eq(t, 0, st.ActiveSnapshots)
	eq(t, 0, st.Pinned)
}

func TestBaseErrorsPropagate(t *testing.T) {
	b := newMapBase()
	s := NewStore(b, 0, nil)
	b.setErr(errBoom)
	sn := s.Snapshot()
	defer sn.Close()
	_, _, _, err := sn.Get([]byte("k"))
	isErr(t, err, errBoom)
	_, err = collectIter(sn.Iter(nil, nil, nil))
	isErr(t, err, errBoom)
}

func TestBaseNewerThanSnapshotIsReported(t *testing.T) {
	b := newMapBase()
	s := NewStore(b, 5, nil)
	sn := s.Snapshot()
	defer sn.Close()
	b.m["k"] = baseEntry{[]byte("v"), 9} // a checkpoint past an open snapshot: forbidden
	_, _, _, err := sn.Get([]byte("k"))
	isErr(t, err, ErrSnapshotTooOld)
	_, err = collectIter(sn.Iter(nil, nil, nil))
	isErr(t, err, ErrSnapshotTooOld)
}

// TestSnapshotIsolationConcurrentInstalls: every transaction writes the same value to all
// keys, so a consistent snapshot sees one value everywhere, equal to its version and <= TS.
func TestSnapshotIsolationConcurrentInstalls(t *testing.T) {
	const keys, writers, commits, readers = 16, 2, 300, 2
	s := NewStore(nil, 0, &Options{ScanChunk: 3})
	var wg sync.WaitGroup
	var stop atomic.Bool
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < commits; i++ {
				ts := s.Next()
				ws := make([]Write, keys)
				for k := range ws {
					ws[k] = put(fmt.Sprintf("k%02d", k), fmt.Sprint(ts))
				}
				s.Install(ts, ws)
				s.DoneDurable(ts)
				if i%50 == 0 {
					s.GC()
				}
			}
		}()
	}
	errs := make(chan error, readers)
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := checkConsistent(s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for s.ReadTS() < writers*commits {
		if err := checkConsistent(s); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func checkConsistent(s *Store) error {
	sn := s.Snapshot()
	defer sn.Close()
	var first string
	for k := 0; k < 16; k++ {
		v, ver, ok, err := sn.Get(fmt.Appendf(nil, "k%02d", k))
		if err != nil {
			return err
		}
		if !ok {
			if sn.TS() > 0 {
				return fmt.Errorf("snapshot %d: key %d missing", sn.TS(), k)
			}
			continue
		}
		if string(v) != fmt.Sprint(ver) || ver > sn.TS() {
			return fmt.Errorf("snapshot %d: key %d = %s@%d", sn.TS(), k, v, ver)
		}
		if first == "" {
			first = string(v)
		} else if string(v) != first {
			return fmt.Errorf("snapshot %d: torn read %s vs %s", sn.TS(), first, v)
		}
	}
	rows, err := collectIter(sn.Iter(nil, nil, nil))
	if err != nil {
		return err
	}
	for _, r := range rows {
		if !strings.HasSuffix(r, "="+first+"@"+first) {
			return fmt.Errorf("snapshot %d: iter row %s, Get saw %s", sn.TS(), r, first)
		}
	}
	return nil
}

func TestWriteSet(t *testing.T) {
	var w WriteSet // zero value usable
	eq(t, 0, w.Len())
	key, val := []byte("b"), []byte("1")
	w.Put(key, val)
	key[0], val[0] = 'X', 'X'
	w.Put([]byte("a"), []byte("22"))
	w.Delete([]byte("c"))
	w.Put([]byte("b"), []byte("333"))
	eq(t, 3, w.Len())
	eq(t, len("a22")+len("b333")+len("c"), w.Bytes())
	v, deleted, ok := w.Get([]byte("b"))
	eq(t, "333", string(v))
	eq(t, false, deleted)
	eq(t, true, ok)
	_, deleted, ok = w.Get([]byte("c"))
	eq(t, true, deleted && ok)
	_, _, ok = w.Get([]byte("zz"))
	eq(t, false, ok)
	var got []string
	for _, x := range w.Writes() {
		got = append(got, fmt.Sprintf("%s=%s/%v", x.Key, x.Value, x.Delete))
	}
	eq(t, "a=22/false b=333/false c=/true", strings.Join(got, " "))
	var rng []string
	w.Range([]byte("b"), []byte("c"), func(k, _ []byte, _ bool) bool { rng = append(rng, string(k)); return true })
	eq(t, true, slices.Equal([]string{"b"}, rng))
	w.Reset()
	eq(t, 0, w.Len())
	eq(t, 0, w.Bytes())
	eq(t, 0, len(w.Writes()))
	var nilWS *WriteSet
	eq(t, 0, nilWS.Len())
}

// TestWriteSetModel drives a write set across the slice → btree promotion
// against a map model: every Get, Len, Bytes, Writes and Range agrees.
func TestWriteSetModel(t *testing.T) {
	rng := newRand(testSeed(t))
	for round := 0; round < 50; round++ {
		var w WriteSet
		model := map[string]*wsEntry{}
		for op := 0; op < 3*smallWrites; op++ {
			k := []byte(fmt.Sprintf("k%02d", rng.IntN(2*smallWrites)))
			if rng.IntN(4) == 0 {
				w.Delete(k)
				model[string(k)] = &wsEntry{key: k, del: true}
			} else {
				v := []byte(fmt.Sprint(op))
				w.Put(k, v)
				model[string(k)] = &wsEntry{key: k, value: v}
			}
			checkWriteSet(t, &w, model)
		}
		w.Reset()
		checkWriteSet(t, &w, map[string]*wsEntry{})
	}
}

func checkWriteSet(t *testing.T, w *WriteSet, model map[string]*wsEntry) {
	t.Helper()
	keys := slices.Sorted(maps.Keys(model))
	size := 0
	var want []string
	for _, k := range keys {
		e := model[k]
		size += len(k) + len(e.value)
		want = append(want, fmt.Sprintf("%s=%s/%v", k, e.value, e.del))
		v, del, ok := w.Get([]byte(k))
		if !ok || del != e.del || string(v) != string(e.value) {
			t.Fatalf("Get(%s) = %q %v %v, model %q %v", k, v, del, ok, e.value, e.del)
		}
	}
	eq(t, len(model), w.Len())
	eq(t, size, w.Bytes())
	var got []string
	for _, x := range w.Writes() {
		got = append(got, fmt.Sprintf("%s=%s/%v", x.Key, x.Value, x.Delete))
	}
	eq(t, strings.Join(want, " "), strings.Join(got, " "))
	if len(keys) > 2 {
		lo, hi := keys[1], keys[len(keys)-1]
		var rng []string
		w.Range([]byte(lo), []byte(hi), func(k, _ []byte, _ bool) bool { rng = append(rng, string(k)); return true })
		eq(t, strings.Join(keys[1:len(keys)-1], ","), strings.Join(rng, ","))
	}
}
