package txkv_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/testenv"
)

// Storage benchmarks of issue 3, with raw bbolt measured in the same run as
// the baseline:
//
//	go test -run '^$' -bench 'Commit|PointGet|Scan1000|Recovery' -benchtime 2s .

var committerCounts = []int{1, 8, 64}

// BenchmarkCommitDurable: single-key durable commits (SyncAlways) from N
// concurrent committers. txkv's group commit turns N waiting committers into
// one bbolt transaction; bbolt Update pays two fsyncs per commit; bbolt Batch
// coalesces with its 10 ms timer.
func BenchmarkCommitDurable(b *testing.B) {
	for _, n := range committerCounts {
		b.Run(fmt.Sprintf("txkv/committers=%d", n), func(b *testing.B) { benchTxkvCommits(b, n) })
		b.Run(fmt.Sprintf("bboltUpdate/committers=%d", n), func(b *testing.B) {
			benchBolt(b, n, func(db *bolt.DB, fn func(*bolt.Tx) error) error { return db.Update(fn) })
		})
		b.Run(fmt.Sprintf("bboltBatch/committers=%d", n), func(b *testing.B) {
			benchBolt(b, n, func(db *bolt.DB, fn func(*bolt.Tx) error) error { return db.Batch(fn) })
		})
	}
}

func benchTxkvCommits(b *testing.B, committers int) {
	db, err := txkv.Open(filepath.Join(b.TempDir(), "db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	var seq atomic.Uint64
	b.ResetTimer()
	runCommitters(b, committers, func() error {
		return db.Put(ctx, u64key(seq.Add(1)), []byte("value-of-sixteen"))
	})
	b.StopTimer()
	st := db.Stats()
	b.ReportMetric(st.MeanBatchSize, "records/batch")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

func benchBolt(b *testing.B, committers int, update func(*bolt.DB, func(*bolt.Tx) error) error) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bolt"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Uint64
	b.ResetTimer()
	runCommitters(b, committers, func() error {
		k := u64key(seq.Add(1))
		return update(db, func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put(k, []byte("value-of-sixteen")) })
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
}

// runCommitters runs b.N operations spread over n goroutines.
func runCommitters(b *testing.B, n int, op func() error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func u64key(i uint64) []byte { return binary.BigEndian.AppendUint64([]byte("k"), i) }

const pointGetKeys = 1_000_000

// BenchmarkPointGet: one read-only transaction per Get over 1,000,000 keys,
// from 8 goroutines, against bbolt's View+Get in the same run.
func BenchmarkPointGet(b *testing.B) {
	// Each database is loaded once, on first use, into the parent's
	// directory: a benchmark with sub-benchmarks runs its body once, while
	// each sub-benchmark runs several times (growing b.N).
	var tdb *txkv.DB
	txkvDB := func() *txkv.DB {
		if tdb == nil {
			tdb = loadTxkv(b, pointGetKeys)
			b.Cleanup(func() { tdb.Close() })
		}
		return tdb
	}
	var bdb *bolt.DB
	boltDB := func() *bolt.DB {
		if bdb == nil {
			bdb = loadBolt(b, pointGetKeys)
			b.Cleanup(func() { bdb.Close() })
		}
		return bdb
	}
	ctx := context.Background()
	b.Run("txkv", func(b *testing.B) {
		db := txkvDB()
		parallelGets(b, func(k []byte) error {
			return db.View(ctx, func(tx *txkv.Tx) error { _, err := tx.Get(k); return err })
		})
	})
	b.Run("txkvDBGet", func(b *testing.B) {
		db := txkvDB()
		parallelGets(b, func(k []byte) error { _, err := db.Get(ctx, k); return err })
	})
	b.Run("bbolt", func(b *testing.B) {
		db := boltDB()
		parallelGets(b, func(k []byte) error {
			return db.View(func(tx *bolt.Tx) error {
				if tx.Bucket([]byte("b")).Get(k) == nil {
					return fmt.Errorf("missing %x", k)
				}
				return nil
			})
		})
	})
}

func parallelGets(b *testing.B, get func(k []byte) error) {
	b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 goroutines on the reference machine
	var seed atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := seed.Add(0x9e3779b97f4a7c15)
		for pb.Next() {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			if err := get(u64key(x % pointGetKeys)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "gets/s")
}

// loadTxkv writes n keys in batches (SyncNone: loading is not what is measured).
func loadTxkv(b *testing.B, n int) *txkv.DB {
	b.Helper()
	opts := txkv.DefaultOptions()
	opts.Sync = txkv.SyncNone
	db, err := txkv.Open(filepath.Join(b.TempDir(), "db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for lo := 0; lo < n; lo += 10_000 {
		err := db.Update(ctx, nil, func(tx *txkv.Tx) error {
			for i := lo; i < min(lo+10_000, n); i++ {
				if err := tx.Put(u64key(uint64(i)), []byte("value-of-sixteen")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db
}

func loadBolt(b *testing.B, n int) *bolt.DB {
	b.Helper()
	db, err := bolt.Open(filepath.Join(b.TempDir(), "bolt"), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < n; lo += 10_000 {
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for i := lo; i < min(lo+10_000, n); i++ {
				if err := bk.Put(u64key(uint64(i)), []byte("value-of-sixteen")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return db
}

// BenchmarkScan1000: a read-only transaction scanning 1,000 consecutive keys.
func BenchmarkScan1000(b *testing.B) {
	db := loadTxkv(b, 100_000)
	defer db.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		start := u64key(uint64(i*1000) % 99_000)
		n := 0
		err := db.View(ctx, func(tx *txkv.Tx) error {
			return tx.Scan(start, nil, func(_, _ []byte) error {
				n++
				if n == 1000 {
					return errStop
				}
				return nil
			})
		})
		if err != errStop {
			b.Fatal(err, n)
		}
	}
}

var errStop = fmt.Errorf("stop")

// crashClose closes db without the final checkpoint, leaving the log as a
// crash would.
func crashClose(b *testing.B, db *txkv.DB) {
	b.Helper()
	if err := txkv.CloseWithoutCheckpoint(db); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRecovery: Open of a file whose log holds 200,000 single-key
// commit records (no checkpoint), reporting records/s.
func BenchmarkRecovery(b *testing.B) {
	const records = 200_000
	path := filepath.Join(b.TempDir(), "db")
	opts := txkv.DefaultOptions()
	opts.Sync = txkv.SyncNone
	opts.CheckpointBytes = 1 << 40 // keep every record in the log
	db, err := txkv.Open(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for lo := 0; lo < records; lo += 64 {
		var wg sync.WaitGroup
		for i := lo; i < lo+64; i++ {
			wg.Go(func() {
				if err := db.Put(ctx, u64key(uint64(i)), []byte("value-of-sixteen")); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	crashClose(b, db)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		db, err := txkv.Open(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(records/time.Since(start).Seconds(), "records/s")
		b.StopTimer()
		crashClose(b, db)
		b.StartTimer()
	}
}

// BenchmarkLargeDataset loads 10,000,000 keys (set TXKV_LARGE_KEYS to
// change it) into a file database whose memtable is capped at 64 MiB, and
// reports the peak Go heap seen during the load and after it: memory is
// bounded by the memtable setting, not by the dataset — the rest lives in
// bbolt. It runs only when asked for by name:
//
//	go test -run '^$' -bench LargeDataset -benchtime 1x -timeout 30m .
//
// The peaks, in MiB: peak-heap is HeapAlloc right after a forced GC, every
// 250,000 keys; peak-live and peak-heap-objects come from a sampler that
// reads runtime/metrics every 20 ms without forcing a GC, so it also sees
// the middle of every checkpoint: peak-live is the heap each GC cycle found
// live (what was allocated during the cycle counts), peak-heap-objects all
// heap objects, garbage not yet collected included (up to GOGC% above live).
// peak-memtable is the memtable's own estimate, sampled likewise.
func BenchmarkLargeDataset(b *testing.B) {
	keys := testenv.Int(b, "TXKV_LARGE_KEYS", 10_000_000)
	for b.Loop() {
		opts := txkv.DefaultOptions()
		opts.Sync = txkv.SyncNone
		opts.MemtableBytes = 64 << 20
		opts.CheckpointBytes = 64 << 20
		db, err := txkv.Open(filepath.Join(b.TempDir(), "db"), opts)
		if err != nil {
			b.Fatal(err)
		}
		var peak uint64
		sample := func() {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		var (
			peakLive, peakObjects uint64
			peakMem               int64
			stop, stopped         = make(chan struct{}), make(chan struct{})
		)
		go func() { // the sampler; its peaks are read after stopped closes
			defer close(stopped)
			ms := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				metrics.Read(ms)
				peakLive = max(peakLive, ms[0].Value.Uint64())
				peakObjects = max(peakObjects, ms[1].Value.Uint64())
				peakMem = max(peakMem, db.Stats().MemtableBytes)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		}()
		stopSampler := sync.OnceFunc(func() { close(stop); <-stopped })
		b.Cleanup(stopSampler) // also after a b.Fatal
		ctx := context.Background()
		for lo := 0; lo < keys; lo += 10_000 {
			err := db.Update(ctx, nil, func(tx *txkv.Tx) error {
				for i := lo; i < min(lo+10_000, keys); i++ {
					if err := tx.Put(u64key(uint64(i)), []byte("value-of-sixteen")); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			if lo%250_000 == 0 {
				sample()
			}
		}
		sample()
		// Every key is still readable: sample a few from base and memtable.
		for _, i := range []int{0, keys / 2, keys - 1} {
			if _, err := db.Get(ctx, u64key(uint64(i))); err != nil {
				b.Fatalf("key %d: %v", i, err)
			}
		}
		if err := db.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		stopSampler()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "settled-heap-MiB")
		st := db.Stats()
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(peakLive)/(1<<20), "peak-live-MiB")
		b.ReportMetric(float64(peakObjects)/(1<<20), "peak-heap-objects-MiB")
		b.ReportMetric(float64(peakMem)/(1<<20), "peak-memtable-MiB")
		b.ReportMetric(float64(st.MemtableBytes)/(1<<20), "memtable-MiB")
		b.ReportMetric(float64(st.Checkpoints), "checkpoints")
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
