package bench

import (
	"fmt"
	"testing"

	"github.com/txkv/txkv"
)

// BenchmarkCounter is the hot counter (CounterSpec) on disk with every default — fsync'd
// commits, the default retry policy (10 attempts) — for 2, 8 and 64 writers and every
// strategy. It reports what the commit protocol promises: failed/op (Updates that gave up)
// 0, and deadlocks/commit; plus retries/op and commits/s.
//
//	go test -run '^$' -bench Counter -benchtime 2000x ./bench
func BenchmarkCounter(b *testing.B) {
	for _, writers := range []int{2, 8, 64} {
		for _, st := range Strategies() {
			b.Run(fmt.Sprintf("writers=%d/strategy=%v", writers, st), func(b *testing.B) {
				benchCounter(b, writers, st)
			})
		}
	}
}

func benchCounter(b *testing.B, writers int, st txkv.Strategy) {
	db, err := txkv.Open(b.TempDir()+"/counter.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	defaults := txkv.DefaultOptions().Retry
	res := driveChecked(b, db, CounterSpec(), RunConfig{Strategy: st, Workers: writers, Ops: b.N, Seed: 1, Retry: defaults})
	b.ReportMetric(res.Throughput, "commits/s")
	b.ReportMetric(float64(res.Failed)/float64(b.N), "failed/op")
	b.ReportMetric(float64(res.Deadlocks)/float64(max(res.Committed, 1)), "deadlocks/commit")
	b.ReportMetric(res.RetriesPer, "retries/op")
	b.ReportMetric(0, "ns/op")
	if res.Failed > 0 {
		b.Logf("%d of %d Updates failed; first: %s", res.Failed, b.N, res.FailedErr)
	}
}
