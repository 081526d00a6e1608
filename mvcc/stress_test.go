package mvcc

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// TestStressEpochFlush races readers at random snapshots against writers and a checkpointer
// that moves versions to a fake Base exactly as a checkpoint would (CheckpointEntries, one atomic
// base update, Flushed) and runs GC. Every read must equal the model (invariants 1 and 3).
func TestStressEpochFlush(t *testing.T) {
	seed := testSeed(t)
	const (
		nkeys   = 48
		writers = 2
		commits = 1500
		readers = 3
		lastTS  = 5
	)
	keyName := func(i int) string { return fmt.Sprintf("k%02d", i) }
	b := newMapBase()
	initial := map[string]histVersion{}
	for i := 0; i < nkeys; i += 3 {
		k := keyName(i)
		initial[k] = histVersion{ts: lastTS, value: "base-" + k}
		b.m[k] = baseEntry{[]byte("base-" + k), lastTS}
	}
	s := NewStore(b, lastTS, &Options{ScanChunk: 2, GCChunk: 4})
	h := newHistory()
	view := func(ts uint64) map[string]histVersion {
		v := h.at(ts)
		for k, iv := range initial {
			if !hasVersionAtOrBelow(h, k, ts) {
				v[k] = iv
			}
		}
		return v
	}

	var wg sync.WaitGroup
	var writing atomic.Int32
	writing.Store(writers)
	errs := make(chan error, writers+readers+2)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer writing.Add(-1)
			rng := newRand(seed + uint64(w) + 1)
			for i := 0; i < commits; i++ {
				var ws []Write
				for n := 1 + rng.IntN(3); n > 0; n-- {
					k := keyName(rng.IntN(nkeys))
					if rng.IntN(4) == 0 {
						ws = append(ws, del(k))
					} else {
						ws = append(ws, put(k, fmt.Sprintf("%s-w%d-%d", k, w, i)))
					}
				}
				ws = dedupLast(ws)
				ts := s.Next()
				h.record(ts, ws)
				s.Install(ts, ws)
				s.DoneDurable(ts)
			}
		}()
	}
	wg.Add(1)
	go func() { // the checkpointer
		defer wg.Done()
		rng := newRand(seed + 100)
		for writing.Load() > 0 {
			checkpoint(s, b)
			if rng.IntN(2) == 0 {
				s.GC()
			}
		}
	}()
	var reads atomic.Int64
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand(seed + 200 + uint64(r))
			for writing.Load() > 0 {
				if rng.IntN(5) == 0 {
					if err := checkLatestOrdered(s); err != nil {
						errs <- err
						return
					}
					continue
				}
				sn := s.Snapshot()
				want := view(sn.TS())
				for op := 0; op < 4; op++ { // several reads per snapshot, checkpoints in between
					var err error
					if rng.IntN(2) == 0 {
						err = checkGet(sn, keyName(rng.IntN(nkeys)), want)
					} else {
						var start, end []byte
						if rng.IntN(2) == 0 {
							start = []byte(keyName(rng.IntN(nkeys)))
						}
						if rng.IntN(2) == 0 {
							end = []byte(keyName(rng.IntN(nkeys)))
						}
						err = checkIter(sn, start, end, want)
					}
					if err != nil {
						errs <- fmt.Errorf("snapshot %d: %w", sn.TS(), err)
						sn.Close()
						return
					}
					reads.Add(1)
				}
				sn.Close()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Drain: a final checkpoint with no reader open empties the memtable.
	checkpoint(s, b)
	s.GC()
	st := s.Stats()
	t.Logf("reads checked %d; final %+v", reads.Load(), st)
	eq(t, 0, st.Versions)
	eq(t, 0, st.Pinned)
	sn := s.Snapshot()
	defer sn.Close()
	noErr(t, checkIter(sn, nil, nil, view(sn.TS())))
}

func checkGet(sn *Snapshot, k string, want map[string]histVersion) error {
	v, ver, ok, err := sn.Get([]byte(k))
	if err != nil {
		return err
	}
	w, wok := want[k]
	if ok != wok || (ok && (string(v) != w.value || ver != w.ts)) {
		return fmt.Errorf("Get(%s) = %s@%d/%v, want %s@%d/%v", k, v, ver, ok, w.value, w.ts, wok)
	}
	return nil
}

func checkIter(sn *Snapshot, start, end []byte, want map[string]histVersion) error {
	got, err := collectIter(sn.Iter(start, end, nil))
	if err != nil {
		return err
	}
	exp := modelScan(want, NewWriteSet(), start, end)
	if !slices.Equal(exp, got) {
		return fmt.Errorf("Iter[%s,%s):\nwant %v\ngot  %v", start, end, exp, got)
	}
	return nil
}

// checkLatestOrdered: a Latest iterator racing installs cannot be checked against a model, but
// it must not fail and must stay strictly ascending.
func checkLatestOrdered(s *Store) error {
	sn := s.Latest()
	defer sn.Close()
	it := sn.Iter(nil, nil, nil)
	defer it.Close()
	var prev []byte
	for it.Next() {
		if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
			return fmt.Errorf("latest iter out of order: %q then %q", prev, it.Key())
		}
		prev = it.Key()
	}
	return it.Err()
}
