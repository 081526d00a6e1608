package mvcc

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func newIndex() *index {
	x := new(index)
	x.init()
	return x
}

func testChain(key string) *chain { return &chain{key: key} }

// checkShard verifies a shard's invariants: n counts the occupied slots, and every entry is
// reachable from its home (no empty slot between its home and its position).
func checkShard(t *testing.T, sh *indexShard) {
	t.Helper()
	slots := sh.mu.slots
	n := 0
	mask := uint64(len(slots) - 1)
	for p, s := range slots {
		if s.hash == 0 {
			continue
		}
		n++
		for i := s.hash & mask; i != uint64(p); i = (i + 1) & mask {
			if slots[i].hash == 0 {
				t.Fatalf("entry %q at %d unreachable from home %d: slot %d empty", s.c.key, p, s.hash&mask, i)
			}
		}
	}
	if n != sh.mu.n {
		t.Fatalf("shard counts %d entries, holds %d", sh.mu.n, n)
	}
}

func checkIndex(t *testing.T, x *index) {
	t.Helper()
	for i := range x.shards {
		checkShard(t, &x.shards[i])
	}
}

func TestIndexInsertGetDeleteGrow(t *testing.T) {
	x := newIndex()
	const n = 20_000 // several grows per shard
	key := func(i int) []byte { return fmt.Appendf(nil, "k%d", i) }
	for i := range n {
		k := key(i)
		if x.get(k) != nil {
			t.Fatalf("%s found before insert", k)
		}
		x.insertLocked(x.hash(k), testChain(string(k)))
	}
	checkIndex(t, x)
	if x.len() != n {
		t.Fatalf("len %d, want %d", x.len(), n)
	}
	for i := range n {
		if c := x.get(key(i)); c == nil || c.key != string(key(i)) {
			t.Fatalf("get %s = %v", key(i), c)
		}
	}
	for i := 0; i < n; i += 2 {
		x.deleteLocked(x.hash(key(i)), key(i))
	}
	x.deleteLocked(x.hash([]byte("absent")), []byte("absent"))
	checkIndex(t, x)
	for i := range n {
		if found := x.get(key(i)) != nil; found != (i%2 == 1) {
			t.Fatalf("after deleting the even keys: get %s found=%v", key(i), found)
		}
	}
	if x.len() != n/2 {
		t.Fatalf("len %d, want %d", x.len(), n/2)
	}
}

// TestIndexBackwardShift fills a run that wraps around the end of a 16-slot table with entries
// of equal and of different homes, then deletes them in every position of the run.
func TestIndexBackwardShift(t *testing.T) {
	// homes: 13, 13, 14, 13, 15, 0, 14, 1 — the run covers slots 13..15 and 0..4.
	homes := []uint64{13, 13, 14, 13, 15, 0, 14, 1}
	for del := range homes {
		for _, fullCollision := range []bool{false, true} {
			var sh indexShard
			hashOf := func(i int) uint64 {
				if fullCollision && homes[i] == 13 {
					return 13 // equal 64-bit hashes: only the key tells them apart
				}
				return homes[i] | uint64(i+1)<<8 // same home, distinct hashes
			}
			key := func(i int) []byte { return fmt.Appendf(nil, "e%d", i) }
			for i := range homes {
				sh.insertLocked(hashOf(i), testChain(string(key(i))))
			}
			if len(sh.mu.slots) != indexMinSlots {
				t.Fatalf("table has %d slots, want %d", len(sh.mu.slots), indexMinSlots)
			}
			checkShard(t, &sh)
			sh.deleteLocked(hashOf(del), key(del))
			checkShard(t, &sh)
			for i := range homes {
				c := sh.findLocked(hashOf(i), key(i))
				if (c != nil) != (i != del) || (c != nil && c.key != string(key(i))) {
					t.Fatalf("delete e%d (full collision %v): find e%d = %v", del, fullCollision, i, c)
				}
			}
		}
	}
}

// TestIndexRandom runs random inserts, deletes and lookups against a map, with the real hash
// and with a weak one that puts every key in one shard with few distinct hashes. The seed is
// logged; replay a failure with MVCC_SEED.
func TestIndexRandom(t *testing.T) {
	seed := testSeed(t)
	for _, weak := range []bool{false, true} {
		x := newIndex()
		hashOf := x.hash
		if weak {
			hashOf = func(k []byte) uint64 { return 1 + x.hash(k)%61 }
		}
		rng := newRand(seed)
		model := map[string]*chain{}
		for op := range 200_000 {
			k := fmt.Appendf(nil, "k%d", rng.IntN(3000))
			h := hashOf(k)
			got := x.shard(h).findLocked(h, k)
			if got != model[string(k)] {
				t.Fatalf("seed %d weak %v op %d: find %s = %p, model %p", seed, weak, op, k, got, model[string(k)])
			}
			switch {
			case got == nil && rng.IntN(3) != 0:
				c := testChain(string(k))
				x.insertLocked(h, c)
				model[string(k)] = c
			case got != nil && rng.IntN(2) == 0:
				x.deleteLocked(h, k)
				delete(model, string(k))
			}
			if op%10_000 == 0 {
				checkIndex(t, x)
			}
		}
		checkIndex(t, x)
		if x.len() != len(model) {
			t.Fatalf("seed %d weak %v: len %d, model %d", seed, weak, x.len(), len(model))
		}
	}
}

// TestIndexConcurrentReaders: keys that stay in the index are always found while a writer
// inserts and deletes others (grows and backward shifts of their shard included).
func TestIndexConcurrentReaders(t *testing.T) {
	x := newIndex()
	var mem sync.Mutex // stands for the Store's mem lock: writers are serialized
	stable := make([][]byte, 500)
	for i := range stable {
		stable[i] = fmt.Appendf(nil, "stable%d", i)
		x.insertLocked(x.hash(stable[i]), testChain(string(stable[i])))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Go(func() {
			for i := r; !stop.Load(); i++ {
				k := stable[i%len(stable)]
				if c := x.get(k); c == nil || c.key != string(k) {
					t.Errorf("stable key %s: %v", k, c)
					return
				}
			}
		})
	}
	for round := range 20 {
		mem.Lock()
		for i := range 2000 {
			k := fmt.Appendf(nil, "churn%d", i)
			if round%2 == 0 {
				x.insertLocked(x.hash(k), testChain(string(k)))
			} else {
				x.deleteLocked(x.hash(k), k)
			}
		}
		mem.Unlock()
	}
	stop.Store(true)
	wg.Wait()
	checkIndex(t, x)
	if x.len() != len(stable) {
		t.Fatalf("len %d, want %d", x.len(), len(stable))
	}
}
