package mvcc

import (
	"bytes"
	"fmt"
	"sort"
	"sync/atomic"
	"testing"
)

func benchKeys(n int) [][]byte {
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key%08d", i)
	}
	return keys
}

func loadedStore(b *testing.B, n int) (*Store, [][]byte) {
	b.Helper()
	s := NewStore(nil, 0, nil)
	keys := benchKeys(n)
	val := bytes.Repeat([]byte("v"), 64)
	const batch = 1000
	for i := 0; i < n; i += batch {
		ws := make([]Write, 0, batch)
		for _, k := range keys[i:min(i+batch, n)] {
			ws = append(ws, Write{Key: k, Value: val})
		}
		commit(s, ws...)
	}
	return s, keys
}

// BenchmarkGetParallel: point reads from a 100,000-key memtable, one snapshot per goroutine.
func BenchmarkGetParallel(b *testing.B) { parallelSnapshotGets(b, 100_000) }

// parallelSnapshotGets reads random keys of an n-key memtable from every goroutine of
// RunParallel, each through its own snapshot.
func parallelSnapshotGets(b *testing.B, n int) {
	s, keys := loadedStore(b, n)
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		sn := s.Snapshot()
		defer sn.Close()
		i := seq.Add(7919) * 104729
		for pb.Next() {
			i = i*6364136223846793005 + 1442695040888963407
			if _, _, ok, err := sn.Get(keys[(i>>33)%uint64(len(keys))]); !ok || err != nil {
				b.Error("missing key")
				return
			}
		}
	})
}

// BenchmarkSnapshotGetParallel: a read-only transaction per Get (Snapshot, Get, Close).
func BenchmarkSnapshotGetParallel(b *testing.B) {
	s, keys := loadedStore(b, 100_000)
	var seq atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := seq.Add(7919) * 104729
		for pb.Next() {
			i = i*6364136223846793005 + 1442695040888963407
			sn := s.Snapshot()
			if _, _, ok, err := sn.Get(keys[(i>>33)%uint64(len(keys))]); !ok || err != nil {
				b.Fatal("missing key")
			}
			sn.Close()
		}
	})
}

// BenchmarkInstall: one-key commits (Next, Install, Done) over 1,000 keys, GC every 4,096.
func BenchmarkInstall(b *testing.B) {
	s := NewStore(nil, 0, nil)
	keys := benchKeys(1000)
	val := bytes.Repeat([]byte("v"), 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ts := s.Next()
		s.Install(ts, []Write{{Key: keys[i%len(keys)], Value: val}})
		s.DoneDurable(ts)
		if i%4096 == 4095 {
			s.GC()
		}
	}
}

// BenchmarkInstallBatch10: ten-key commits.
func BenchmarkInstallBatch10(b *testing.B) {
	s := NewStore(nil, 0, nil)
	keys := benchKeys(1000)
	val := bytes.Repeat([]byte("v"), 64)
	ws := make([]Write, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		for j := range ws {
			ws[j] = Write{Key: keys[(i*10+j)%len(keys)], Value: val}
		}
		ts := s.Next()
		s.Install(ts, ws)
		s.DoneDurable(ts)
		if i%1024 == 1023 {
			s.GC()
		}
	}
}

// BenchmarkIter1000 scans 1,000 keys: all in the memtable, all in the base, or split.
func BenchmarkIter1000(b *testing.B) {
	for _, where := range []string{"memtable", "base", "mixed"} {
		b.Run(where, func(b *testing.B) {
			keys := benchKeys(1000)
			val := bytes.Repeat([]byte("v"), 64)
			base := &sliceBase{}
			s := NewStore(base, 1, nil)
			for i, k := range keys {
				if where == "base" || (where == "mixed" && i%2 == 0) {
					base.rows = append(base.rows, sliceRow{k, val, 1})
				} else {
					commit(s, Write{Key: k, Value: val})
				}
			}
			sn := s.Snapshot()
			defer sn.Close()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				it := sn.Iter(nil, nil, nil)
				n := 0
				for it.Next() {
					n++
				}
				it.Close()
				if n != len(keys) || it.Err() != nil {
					b.Fatalf("scanned %d keys, err %v", n, it.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/key")
		})
	}
}

// BenchmarkNextDone: oracle throughput, serial and from all goroutines.
func BenchmarkNextDone(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		s := NewStore(nil, 0, nil)
		b.ReportAllocs()
		for b.Loop() {
			s.Done(s.Next())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := NewStore(nil, 0, nil)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				s.Done(s.Next())
			}
		})
	})
}

// sliceBase is a read-only sorted Base for benchmarks.
type sliceBase struct{ rows []sliceRow }

type sliceRow struct {
	key, value []byte
	version    uint64
}

func (sb *sliceBase) Get(key []byte) ([]byte, uint64, bool, error) {
	i := sort.Search(len(sb.rows), func(i int) bool { return bytes.Compare(sb.rows[i].key, key) >= 0 })
	if i < len(sb.rows) && bytes.Equal(sb.rows[i].key, key) {
		return sb.rows[i].value, sb.rows[i].version, true, nil
	}
	return nil, 0, false, nil
}

func (sb *sliceBase) Scan(start, end []byte, limit int, fn func(key, value []byte, version uint64) bool) error {
	i := sort.Search(len(sb.rows), func(i int) bool { return bytes.Compare(sb.rows[i].key, start) >= 0 })
	for n := 0; i < len(sb.rows) && n < limit; i, n = i+1, n+1 {
		r := sb.rows[i]
		if end != nil && bytes.Compare(r.key, end) >= 0 {
			break
		}
		if !fn(r.key, r.value, r.version) {
			break
		}
	}
	return nil
}

// BenchmarkGet1M: point reads of random keys from a 1,000,000-key memtable, one goroutine:
// the latency of the lookup itself, dominated by cache misses (index, chain, version).
func BenchmarkGet1M(b *testing.B) {
	s, keys := loadedStore(b, 1_000_000)
	sn := s.Snapshot()
	defer sn.Close()
	i := uint64(1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		i = i*6364136223846793005 + 1442695040888963407
		if _, _, ok, err := sn.Get(keys[(i>>33)%uint64(len(keys))]); !ok || err != nil {
			b.Fatal("missing key")
		}
	}
}

// BenchmarkGet1MParallel is BenchmarkGet1M from 4 goroutines per core, each with its own
// snapshot: what readers cost each other (shared lock words) on top of the cache misses.
func BenchmarkGet1MParallel(b *testing.B) {
	b.SetParallelism(4)
	parallelSnapshotGets(b, 1_000_000)
}
