package wal

// Benchmarks. Commands (see the package report for numbers):
//
//	go test -run '^$' -bench 'Append|Bolt' -benchtime 2s ./wal/
//	go test -run '^$' -bench 'Replay|Get|Scan|Codec' ./wal/
//
// BenchmarkAppend is txkv's group commit; BenchmarkBoltUpdate and BenchmarkBoltBatch are raw
// bbolt, one small put per call, measured in the same run as the baseline. All are durable
// (fsync per commit) unless the name says otherwise.

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	bolt "go.etcd.io/bbolt"
)

var committerCounts = []int{1, 8, 16, 64}

// benchValue is the payload of every benchmark commit: a 16-byte key and a 64-byte value.
var benchValue = make([]byte, 64)

// runCommitters runs b.N commits spread over n goroutines and reports commits/s.
func runCommitters(b *testing.B, n int, commit func(seq uint64) error) {
	var next atomic.Uint64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range n {
		wg.Go(func() {
			for {
				seq := next.Add(1)
				if seq > uint64(b.N) {
					return
				}
				if err := commit(seq); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

func benchAppend(b *testing.B, opts *Options) {
	for _, n := range committerCounts {
		b.Run(fmt.Sprintf("committers=%d", n), func(b *testing.B) {
			l := openTemp(b, opts)
			runCommitters(b, n, func(seq uint64) error {
				var key [16]byte
				binary.BigEndian.PutUint64(key[8:], seq)
				r := Record{TS: seq, TxnID: seq, Ops: []Op{{Key: key[:], Value: benchValue}}}
				return l.Append(&r)
			})
			s := l.Stats()
			b.ReportMetric(s.MeanBatch(), "records/batch")
		})
	}
}

func BenchmarkAppend(b *testing.B) { benchAppend(b, nil) }

// BenchmarkAppendNoFreelistSync measures the option left off by default (see Options).
func BenchmarkAppendNoFreelistSync(b *testing.B) { benchAppend(b, &Options{NoFreelistSync: true}) }

// BenchmarkAppendSyncNone: group commit without fsync.
func BenchmarkAppendSyncNone(b *testing.B) { benchAppend(b, &Options{Sync: SyncNone}) }

func openRawBolt(b *testing.B) *bolt.DB {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bolt.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func boltPut(seq uint64) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		var key [16]byte
		binary.BigEndian.PutUint64(key[8:], seq)
		return tx.Bucket([]byte("b")).Put(key[:], benchValue)
	}
}

// BenchmarkBoltUpdate: raw bbolt, one db.Update with one small put per commit.
func BenchmarkBoltUpdate(b *testing.B) {
	for _, n := range committerCounts {
		b.Run(fmt.Sprintf("committers=%d", n), func(b *testing.B) {
			db := openRawBolt(b)
			runCommitters(b, n, func(seq uint64) error { return db.Update(boltPut(seq)) })
		})
	}
}

// BenchmarkBoltBatch: raw bbolt db.Batch (default MaxBatchDelay 10ms), one small put per call.
func BenchmarkBoltBatch(b *testing.B) {
	for _, n := range committerCounts {
		b.Run(fmt.Sprintf("committers=%d", n), func(b *testing.B) {
			db := openRawBolt(b)
			runCommitters(b, n, func(seq uint64) error { return db.Batch(boltPut(seq)) })
		})
	}
}

// BenchmarkReplay replays a log of 200,000 records (one op each) per iteration.
func BenchmarkReplay(b *testing.B) {
	const n = 200_000
	l := openTemp(b, &Options{Sync: SyncNone})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for ts := uint64(w + 1); ts <= n; ts += 16 {
				var key [16]byte
				binary.BigEndian.PutUint64(key[8:], ts)
				if err := l.Append(&Record{TS: ts, TxnID: ts, Ops: []Op{{Key: key[:], Value: benchValue}}}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	for b.Loop() {
		count := 0
		last, err := l.Replay(func(r *Record) error { count++; return nil })
		if err != nil || count != n || last != n {
			b.Fatalf("replay: %d records, last %d, %v", count, last, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// baseOf returns a Log whose base holds n keys "key%09d" with 64-byte values.
func baseOf(b *testing.B, n int) *Log {
	l := openTemp(b, &Options{Sync: SyncNone})
	err := l.Checkpoint(1, func(yield func(BaseEntry) bool) {
		for i := range n {
			if !yield(BaseEntry{Key: fmt.Appendf(nil, "key%09d", i), Value: benchValue, Version: 1}) {
				return
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkGet: point reads from the checkpointed base of 1,000,000 keys, 8 goroutines.
func BenchmarkGet(b *testing.B) {
	const n = 1_000_000
	l := baseOf(b, n)
	var seed atomic.Uint64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := seed.Add(0x9E3779B97F4A7C15)
		key := make([]byte, 0, 16)
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			key = fmt.Appendf(key[:0], "key%09d", x%n)
			if _, _, ok, err := l.Get(key); !ok || err != nil {
				b.Errorf("Get %s: %v %v", key, ok, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// BenchmarkScan1000: one Scan of 1,000 consecutive base keys per op.
func BenchmarkScan1000(b *testing.B) {
	l := baseOf(b, 100_000)
	i := 0
	for b.Loop() {
		start := fmt.Appendf(nil, "key%09d", (i*7919)%99_000)
		i++
		count := 0
		if err := l.Scan(start, nil, 1000, func([]byte, []byte, uint64) bool { count++; return true }); err != nil || count != 1000 {
			b.Fatalf("scan: %d, %v", count, err)
		}
	}
}

func BenchmarkCodec(b *testing.B) {
	r := rec(123456789, "user/000123/balance", "00000000000000000042", "user/000456/balance", "00000000000000000058")
	b.Run("AppendRecord", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendRecord(buf[:0], r)
		}
	})
	b.Run("DecodeRecord", func(b *testing.B) {
		enc := AppendRecord(nil, r)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeRecord(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBoltGet is the baseline for BenchmarkGet: raw bbolt View + Get + copy on the same
// 1,000,000-key base file, 8 goroutines.
func BenchmarkBoltGet(b *testing.B) {
	const n = 1_000_000
	l := baseOf(b, n)
	db := l.db
	var seed atomic.Uint64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := seed.Add(0x9E3779B97F4A7C15)
		key := make([]byte, 0, 16)
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			key = fmt.Appendf(key[:0], "key%09d", x%n)
			var v []byte
			_ = db.View(func(tx *bolt.Tx) error {
				v = append([]byte(nil), tx.Bucket(bucketBase).Get(key)...)
				return nil
			})
			if v == nil {
				b.Errorf("Get %s: missing", key)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}
