package mvcc

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestIterBasicMerge(t *testing.T) {
	b := newMapBase()
	for _, k := range []string{"a", "c", "e", "g"} {
		b.m[k] = baseEntry{[]byte("base-" + k), 1}
	}
	s := NewStore(b, 1, &Options{ScanChunk: 2})
	commit(s, put("b", "mem-b"), del("c"), put("e", "mem-e"), put("h", "mem-h")) // 2
	sn := s.Snapshot()
	defer sn.Close()
	ws := NewWriteSet()
	ws.Put([]byte("a"), []byte("own-a"))
	ws.Delete([]byte("e"))
	ws.Put([]byte("f"), []byte("own-f"))
	ws.Delete([]byte("zz"))

	rows, err := collectIter(sn.Iter(nil, nil, ws))
	noErr(t, err)
	eq(t, "a=own-a@0 b=mem-b@2 f=own-f@0 g=base-g@1 h=mem-h@2", strings.Join(rows, " "))

	rows, err = collectIter(sn.Iter([]byte("b"), []byte("g"), nil))
	noErr(t, err)
	eq(t, "b=mem-b@2 e=mem-e@2", strings.Join(rows, " "))

	rows, err = collectIter(sn.Iter([]byte("g"), []byte("b"), ws)) // empty range
	noErr(t, err)
	eq(t, 0, len(rows))
}

// TestIterMatchesModel compares Get and Iter at many snapshots, with random overlays and bounds,
// against a brute-force model, while GC and checkpoints reshuffle memtable and base.
func TestIterMatchesModel(t *testing.T) {
	for round := 0; round < 20; round++ {
		seed := testSeed(t)
		t.Run(fmt.Sprint(round), func(t *testing.T) { iterModelRound(t, seed) })
		if t.Failed() {
			return
		}
	}
}

func iterModelRound(t *testing.T, seed uint64) {
	rng := newRand(seed)
	const nkeys, lastTS = 30, 10
	key := func() string { return fmt.Sprintf("k%02d", rng.IntN(nkeys)) }
	b := newMapBase()
	initial := make(map[string]histVersion)
	for i := 0; i < nkeys/2; i++ {
		k := key()
		v := histVersion{ts: uint64(1 + rng.IntN(lastTS)), value: "base-" + k}
		initial[k] = v
		b.m[k] = baseEntry{[]byte(v.value), v.ts}
	}
	var base Base = b
	if rng.IntN(4) == 0 {
		base, initial = EmptyBase{}, map[string]histVersion{}
	}
	s := NewStore(base, lastTS, &Options{ScanChunk: 1 + rng.IntN(5), GCChunk: 1 + rng.IntN(8)})
	h := newHistory()
	type held struct {
		sn   *Snapshot
		view map[string]histVersion
	}
	var snaps []held
	viewAt := func(ts uint64) map[string]histVersion {
		view := h.at(ts)
		for k, v := range initial { // keys with no committed version <= ts read the base
			if !hasVersionAtOrBelow(h, k, ts) {
				view[k] = v
			}
		}
		return view
	}
	for step := 0; step < 60; step++ {
		switch r := rng.IntN(10); {
		case r < 6:
			var ws []Write
			for n := 1 + rng.IntN(4); n > 0; n-- {
				if rng.IntN(3) == 0 {
					ws = append(ws, del(key()))
				} else {
					k := key()
					ws = append(ws, put(k, fmt.Sprintf("%s-v%d", k, step)))
				}
			}
			ts := s.Next()
			h.record(ts, dedupLast(ws))
			s.Install(ts, ws)
			s.DoneDurable(ts)
		case r < 8:
			sn := s.Snapshot()
			snaps = append(snaps, held{sn, viewAt(sn.TS())})
		case r < 9:
			s.GC()
		default:
			if mb, ok := base.(*mapBase); ok {
				checkpoint(s, mb)
			}
		}
		if len(snaps) > 0 && rng.IntN(5) == 0 { // close one, re-check it first
			i := rng.IntN(len(snaps))
			checkSnapshot(t, rng, snaps[i].sn, snaps[i].view, nkeys)
			snaps[i].sn.Close()
			snaps = slices.Delete(snaps, i, i+1)
		}
	}
	for _, x := range snaps {
		checkSnapshot(t, rng, x.sn, x.view, nkeys)
		x.sn.Close()
	}
	latest := s.Latest()
	checkSnapshot(t, rng, latest, viewAt(s.ReadTS()), nkeys)
	latest.Close()
}

func hasVersionAtOrBelow(h *history, k string, ts uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.m[k] {
		if v.ts <= ts {
			return true
		}
	}
	return false
}

// dedupLast keeps the last write of each key (what Install does with duplicates).
func dedupLast(ws []Write) []Write {
	seen := map[string]bool{}
	var out []Write
	for i := len(ws) - 1; i >= 0; i-- {
		if !seen[string(ws[i].Key)] {
			seen[string(ws[i].Key)] = true
			out = append(out, ws[i])
		}
	}
	return out
}

func checkSnapshot(t *testing.T, rng *rand.Rand, sn *Snapshot, view map[string]histVersion, nkeys int) {
	t.Helper()
	for i := 0; i < nkeys; i++ {
		k := fmt.Sprintf("k%02d", i)
		want := "<none>"
		if v, ok := view[k]; ok {
			want = fmt.Sprintf("%s@%d", v.value, v.ts)
		}
		eq(t, want, getStr(t, sn, k), "Get(%s) at %d", k, sn.TS())
	}
	for trial := 0; trial < 5; trial++ {
		ws := NewWriteSet()
		for n := rng.IntN(6); n > 0; n-- {
			k := fmt.Sprintf("k%02d", rng.IntN(nkeys))
			if rng.IntN(2) == 0 {
				ws.Delete([]byte(k))
			} else {
				ws.Put([]byte(k), []byte("own-"+k))
			}
		}
		var start, end []byte
		if rng.IntN(2) == 0 {
			start = fmt.Appendf(nil, "k%02d", rng.IntN(nkeys))
		}
		if rng.IntN(2) == 0 {
			end = fmt.Appendf(nil, "k%02d", rng.IntN(nkeys+1))
		}
		got, err := collectIter(sn.Iter(start, end, ws))
		noErr(t, err)
		want := modelScan(view, ws, start, end)
		if !slices.Equal(want, got) {
			t.Fatalf("Iter[%s,%s) at %d:\nwant %v\ngot  %v", start, end, sn.TS(), want, got)
		}
	}
}

func modelScan(view map[string]histVersion, ws *WriteSet, start, end []byte) []string {
	rows := map[string]string{}
	for k, v := range view {
		rows[k] = fmt.Sprintf("%s=%s@%d", k, v.value, v.ts)
	}
	for _, w := range ws.Writes() {
		if w.Delete {
			delete(rows, string(w.Key))
		} else {
			rows[string(w.Key)] = fmt.Sprintf("%s=%s@0", w.Key, w.Value)
		}
	}
	var out []string
	for k, r := range rows {
		if (start == nil || k >= string(start)) && (end == nil || k < string(end)) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}
