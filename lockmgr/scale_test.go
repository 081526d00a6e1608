package lockmgr

import (
	"context"
	"encoding/binary"
	"runtime"
	"sync"
	"testing"
)

// TestHotKeyReleaseIsConstant: releasing a key with n exclusive waiters
// examines at most two of them (the one granted and the one behind it),
// whatever n: a drain is linear, not quadratic. Counted, not timed.
func TestHotKeyReleaseIsConstant(t *testing.T) {
	const n = 300
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	key := Point([]byte("hot"))
	must(t, m.Acquire(ctx, 1, key, Exclusive, Block, Forever))
	done := make([]chan error, n)
	for i := range n {
		done[i] = make(chan error, 1)
		go func() { done[i] <- m.Acquire(ctx, uint64(100+i), key, Exclusive, Block, Forever) }()
		waitUntilWaiting(t, m, uint64(100+i))
	}
	if w, e := m.graph.Len(); w != n || e != n {
		t.Fatalf("graph has %d waiters and %d edges, want %d and %d (one edge each)", w, e, n, n)
	}
	var mu sync.Mutex
	most := 0
	m.hooks.refreshed = func(examined int) {
		mu.Lock()
		most = max(most, examined)
		mu.Unlock()
	}
	m.ReleaseAll(1)
	for i := range n {
		must(t, <-done[i])
		m.ReleaseAll(uint64(100 + i))
	}
	if most > 2 {
		t.Fatalf("a release examined %d waiters, want at most 2", most)
	}
	wantLocks(t, m)
}

// TestMemoryAfterPeak: a peak of large-key locks - 2,048 keys of 32 KiB
// held at once, 64 MiB - leaves the live heap near where it was once they
// are released: recycled lock heads drop large key buffers, and the maps
// and scratch slices sized by the peak are rebuilt small.
func TestMemoryAfterPeak(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 64 MiB")
	}
	const keys, size = 2048, 32 << 10
	m := New(nil)
	defer m.Close()
	ctx := context.Background()
	must(t, m.Acquire(ctx, 1, Point([]byte("warm")), Exclusive, Block, Forever))
	m.ReleaseAll(1)
	base := liveHeap()
	key := make([]byte, size)
	for i := range keys {
		binary.BigEndian.PutUint32(key, uint32(i))
		must(t, m.Acquire(ctx, 2, Point(key), Exclusive, Block, Forever))
	}
	peak := liveHeap()
	m.ReleaseAll(2)
	after := liveHeap()
	runtime.KeepAlive(m)
	t.Logf("live heap: baseline %d KiB, peak %d KiB, after release %d KiB", base>>10, peak>>10, after>>10)
	if after > base+4<<20 {
		t.Fatalf("%d KiB still live after the peak (baseline %d KiB)", after>>10, base>>10)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
