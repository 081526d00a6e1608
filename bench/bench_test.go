package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	onDisk = flag.Bool("txkv.disk", false, "benchmarks: use an on-disk DB (SyncAlways) instead of memory")
	bg     = context.Background()
)

// seed returns the run's seed: TXKV_BENCH_SEED replays one.
func seed(t testing.TB) uint64 { return testenv.Seed(t, "TXKV_BENCH_SEED") }

func openMem(t testing.TB) *txkv.DB {
	t.Helper()
	db, err := txkv.Open("", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestWorkloads runs every workload under every strategy at its most
// contended setting, briefly, and asserts its invariant.
func TestWorkloads(t *testing.T) {
	s := seed(t)
	for _, spec := range Workloads() {
		for _, st := range Strategies() {
			t.Run(spec.Name+"/"+st.String(), func(t *testing.T) {
				db := openMem(t)
				cfg := Config{HotSet: spec.Sweep[0], Think: NoThink}
				res, err := Run(bg, db, spec, cfg, RunConfig{Strategy: st, Workers: 8, Ops: 500, Seed: s})
				if err != nil {
					t.Fatal(err)
				}
				if p := res.Problem(); p != "" {
					t.Fatal(p) // a broken invariant, or a deadlock the pessimistic recipe promises cannot happen
				}
				if res.Ops+res.Failed != 500 {
					t.Fatalf("ops %d + failed %d, want 500", res.Ops, res.Failed)
				}
				if res.Committed == 0 {
					t.Fatalf("nothing committed: %+v", res)
				}
			})
		}
	}
}

// TestWorkloadsWithThink runs each workload once with its default think
// time and hot set, the configuration the runner uses.
func TestWorkloadsWithThink(t *testing.T) {
	s := seed(t)
	for _, spec := range Workloads() {
		t.Run(spec.Name, func(t *testing.T) {
			db := openMem(t)
			res, err := Run(bg, db, spec, Config{}, RunConfig{Strategy: txkv.Hybrid, Workers: 4, Ops: 60, Seed: s})
			if err != nil || !res.InvariantOK {
				t.Fatalf("err %v, invariant %q", err, res.InvariantErr)
			}
		})
	}
}

// bump adds delta to the 8-byte integer at k, behind the workload's back.
func bump(db *txkv.DB, k []byte, delta int64) error {
	v, err := db.Get(bg, k)
	if err != nil {
		return err
	}
	n, err := dec(v)
	if err != nil {
		return err
	}
	return db.Put(bg, k, enc(n+delta))
}

// tamper breaks each workload's invariant the way a concurrency bug would.
var tamper = map[string]func(db *txkv.DB) error{
	"bank":      func(db *txkv.DB) error { return bump(db, acct(0), 1) },                             // money from nowhere
	"inventory": func(db *txkv.DB) error { return bump(db, stockKey(0), -1) },                        // a unit sold without an order
	"tickets":   func(db *txkv.DB) error { return db.Put(bg, bookingKey([]byte("x")), []byte("0")) }, // a second booking
	"likes":     func(db *txkv.DB) error { return bump(db, likeCount(0), 1) },                        // a like counted twice
	"medical":   func(db *txkv.DB) error { return bump(db, recordKey(0), 1) },                        // an edit whose history is lost
	"content":   func(db *txkv.DB) error { return bump(db, sectionKey(0, 0), 1) },                    // a lost revision bump
	"flashsale": func(db *txkv.DB) error { return bump(db, saleStockKey(0), -1) },                    // oversold
	"collab": func(db *txkv.DB) error { // a lost edit: the list forgets its last insert
		v, err := db.Get(bg, listKey(0))
		if err != nil {
			return err
		}
		pl, err := decodePlaylist(v)
		if err != nil {
			return err
		}
		pl.songs = pl.songs[1:]
		return db.Put(bg, listKey(0), pl.encode())
	},
}

// TestCheckCatchesViolations shows every Check can fail: a run passes, then
// one tampered key makes it fail with ErrInvariant.
func TestCheckCatchesViolations(t *testing.T) {
	s := seed(t)
	for _, spec := range Workloads() {
		t.Run(spec.Name, func(t *testing.T) {
			db := openMem(t)
			inst := spec.New(Config{HotSet: spec.Sweep[0], Think: NoThink})
			if err := inst.Setup(bg, db); err != nil {
				t.Fatal(err)
			}
			if _, err := Drive(bg, db, inst, RunConfig{Strategy: txkv.Pessimistic, Workers: 2, Ops: 80, Seed: s}); err != nil {
				t.Fatal(err)
			}
			if err := inst.Check(bg, db); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			if err := tamper[spec.Name](db); err != nil {
				t.Fatal(err)
			}
			if err := inst.Check(bg, db); !errors.Is(err, ErrInvariant) {
				t.Fatalf("after tampering: Check = %v, want ErrInvariant", err)
			}
		})
	}
}

// scripted is an Instance whose operations return a scripted error.
type scripted struct {
	errs []error
	i    atomic.Int64
}

func (s *scripted) Setup(context.Context, *txkv.DB) error { return nil }
func (s *scripted) Check(context.Context, *txkv.DB) error { return nil }
func (s *scripted) Op(context.Context, *txkv.DB, *txkv.TxOptions, *Worker) error {
	return s.errs[int(s.i.Add(1)-1)%len(s.errs)]
}

func TestDriverAccounting(t *testing.T) {
	db := openMem(t)
	inst := &scripted{errs: []error{nil, ErrRejected, nil, txkv.ErrConflict}}
	res, err := Drive(bg, db, inst, RunConfig{Workers: 2, Ops: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Committed != 50 || res.Rejected != 25 || res.Failed != 25 || res.Ops != 75 {
		t.Fatalf("committed %d rejected %d failed %d ops %d", res.Committed, res.Rejected, res.Failed, res.Ops)
	}
	if res.P99 < res.P50 || res.Max < res.P99 {
		t.Fatalf("percentiles out of order: %v %v %v", res.P50, res.P99, res.Max)
	}
}

// kinds is an Instance whose every third operation only reads, and whose
// every third write is refused.
type kinds struct{ i atomic.Int64 }

func (k *kinds) Setup(context.Context, *txkv.DB) error { return nil }
func (k *kinds) Check(context.Context, *txkv.DB) error { return nil }
func (k *kinds) Op(_ context.Context, _ *txkv.DB, _ *txkv.TxOptions, w *Worker) error {
	switch k.i.Add(1) % 3 {
	case 0:
		w.readsOnly()
		return nil
	case 1:
		return ErrRejected
	}
	return nil
}

// TestDriverLatencyByKind: read-only operations and committed writes are
// summarized apart; a refused write is in neither (it wrote nothing).
func TestDriverLatencyByKind(t *testing.T) {
	db := openMem(t)
	res, err := Drive(bg, db, &kinds{}, RunConfig{Workers: 3, Ops: 300})
	if err != nil {
		t.Fatal(err)
	}
	if res.Read.N != 100 || res.Write.N != 100 || res.Rejected != 100 {
		t.Fatalf("read %d, write %d, rejected %d; want 100 each", res.Read.N, res.Write.N, res.Rejected)
	}
	for _, l := range []Latency{res.Read, res.Write} {
		if l.P99 < l.P50 || l.Max < l.P99 {
			t.Fatalf("percentiles out of order: %+v", l)
		}
	}
}

// mismatching is an Instance whose every operation is a save that loses its
// version check once, then a refused one: neither is contention.
type mismatching struct{}

func (mismatching) Setup(ctx context.Context, db *txkv.DB) error {
	return db.Put(ctx, []byte("doc"), []byte("v1"))
}
func (mismatching) Check(context.Context, *txkv.DB) error { return nil }
func (mismatching) Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, _ *Worker) error {
	err := db.Update(ctx, opts, func(tx *txkv.Tx) error { return tx.PutIfVersion([]byte("doc"), []byte("v2"), 0) }) // 0: only if absent
	if !errors.Is(err, txkv.ErrVersionMismatch) {
		return fmt.Errorf("PutIfVersion with a stale version: %v, want ErrVersionMismatch", err)
	}
	return db.Update(ctx, opts, func(*txkv.Tx) error { return ErrRejected })
}

// TestMergesAreNotAborts: version mismatches are counted as merges and
// business refusals as rejections; the abort rate counts contention only.
func TestMergesAreNotAborts(t *testing.T) {
	db := openMem(t)
	inst := mismatching{}
	if err := inst.Setup(bg, db); err != nil {
		t.Fatal(err)
	}
	res, err := Drive(bg, db, inst, RunConfig{Strategy: txkv.Pessimistic, Workers: 2, Ops: 40})
	if err != nil {
		t.Fatal(err)
	}
	if res.Merges != 40 || res.MergesPer != 1 || res.Rejected != 40 {
		t.Fatalf("merges %d (%.2f/op), rejected %d; want 40, 1.00, 40", res.Merges, res.MergesPer, res.Rejected)
	}
	if res.Aborts != 0 || res.AbortRate != 0 || res.Attempts != 80 {
		t.Fatalf("aborts %d, abort rate %.2f, attempts %d; want 0, 0, 80", res.Aborts, res.AbortRate, res.Attempts)
	}
}

// TestDeadlockPromise: a deadlock fails the run only where the recipe
// promises none — Pessimistic, with its locks taken in order.
func TestDeadlockPromise(t *testing.T) {
	ordered, unordered := Spec{OrderedLocks: true}, Spec{}
	for _, tc := range []struct {
		spec      Spec
		st        txkv.Strategy
		deadlocks uint64
		fails     bool
	}{
		{ordered, txkv.Pessimistic, 1, true},
		{ordered, txkv.Pessimistic, 0, false},
		{ordered, txkv.Optimistic, 3, false},
		{ordered, txkv.Hybrid, 3, false},
		{unordered, txkv.Pessimistic, 3, false},
	} {
		res := Result{InvariantOK: true, Deadlocks: tc.deadlocks}
		checkDeadlocks(tc.spec, tc.st, &res)
		if got := strings.HasPrefix(res.Problem(), "FAIL: "); got != tc.fails {
			t.Errorf("ordered=%v %v with %d deadlocks: Problem() = %q", tc.spec.OrderedLocks, tc.st, tc.deadlocks, res.Problem())
		}
	}
	for _, spec := range Workloads() {
		if !spec.DeadlockFree(txkv.Pessimistic) || spec.Recipe == "" {
			t.Errorf("%s: the pessimistic recipe should promise no deadlocks and say how it is written", spec.Name)
		}
	}
}

func TestDriverStopsOnUnexpectedError(t *testing.T) {
	db := openMem(t)
	boom := errors.New("boom")
	inst := &scripted{errs: []error{nil, boom}}
	_, err := Drive(bg, db, inst, RunConfig{Workers: 2, Ops: 1000})
	if !errors.Is(err, boom) {
		t.Fatalf("Drive = %v, want boom", err)
	}
	if n := inst.i.Load(); n > 10 {
		t.Fatalf("%d operations ran after the error", n)
	}
}

func TestDriverDuration(t *testing.T) {
	db := openMem(t)
	res, err := Drive(bg, db, &scripted{errs: []error{nil}}, RunConfig{Workers: 2, Duration: 20 * time.Millisecond})
	if err != nil || res.Committed == 0 || res.Elapsed < 20*time.Millisecond {
		t.Fatalf("err %v, committed %d, elapsed %v", err, res.Committed, res.Elapsed)
	}
	if _, err := Drive(bg, db, &scripted{errs: []error{nil}}, RunConfig{}); err == nil {
		t.Fatal("Drive without Ops or Duration: no error")
	}
}

func TestTransform(t *testing.T) {
	for _, tc := range []struct {
		pos    int
		missed []editOp
		want   int
	}{
		{2, nil, 2},
		{2, []editOp{{3, 9}}, 2},         // after us: no shift
		{2, []editOp{{2, 9}}, 3},         // same position: the earlier commit goes first
		{2, []editOp{{0, 8}, {1, 9}}, 4}, // two before us
		{0, []editOp{{1, 8}, {0, 9}}, 1},
	} {
		if got := transform(tc.pos, tc.missed); got != tc.want {
			t.Errorf("transform(%d, %v) = %d, want %d", tc.pos, tc.missed, got, tc.want)
		}
	}
}

// The guide's decision matrix (issue 4), applied to the profiles the
// workloads describe themselves with.
func TestAdviceMatchesGuide(t *testing.T) {
	want := map[string]txkv.Strategy{
		"bank": txkv.Pessimistic, "inventory": txkv.Optimistic, "tickets": txkv.Hybrid,
		"likes": txkv.Optimistic, "medical": txkv.Pessimistic, "content": txkv.Optimistic,
		"flashsale": txkv.Pessimistic, "collab": txkv.Optimistic,
	}
	for _, spec := range Workloads() {
		a := Advise(spec.Profile)
		if a.Strategy != want[spec.Name] || len(a.Reasons) == 0 {
			t.Errorf("%s: Advise = %v %q, want %v", spec.Name, a.Strategy, a.Reasons, want[spec.Name])
		}
	}
}

func TestLookupAndParse(t *testing.T) {
	if _, err := Lookup("bank"); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup("nope"); err == nil {
		t.Fatal("Lookup(nope): no error")
	}
	for _, st := range Strategies() {
		if got, err := ParseStrategy(st.String()); err != nil || got != st {
			t.Fatalf("ParseStrategy(%s) = %v, %v", st, got, err)
		}
	}
	if _, err := ParseStrategy("psychic"); err == nil {
		t.Fatal("ParseStrategy(psychic): no error")
	}
}

// BenchmarkWorkload runs every workload under every strategy at its default
// contention and think time; b.N is the number of business operations.
//
//	go test -run '^$' -bench Workload -benchtime 2000x ./bench/ | benchstat -
func BenchmarkWorkload(b *testing.B) {
	for _, spec := range Workloads() {
		for _, st := range Strategies() {
			b.Run(spec.Name+"/"+st.String(), func(b *testing.B) { benchWorkload(b, spec, st) })
		}
	}
}

// driveChecked loads a fresh instance of spec into db, drives it with rc
// (timed) and fails the benchmark if the run or its invariant fails.
func driveChecked(b *testing.B, db *txkv.DB, spec Spec, rc RunConfig) Result {
	inst := spec.New(Config{})
	if err := inst.Setup(bg, db); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	res, err := Drive(bg, db, inst, rc)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if err := inst.Check(bg, db); err != nil {
		b.Fatal(err)
	}
	return res
}

func benchWorkload(b *testing.B, spec Spec, st txkv.Strategy) {
	path := ""
	if *onDisk {
		path = b.TempDir() + "/bench.db"
	}
	db, err := txkv.Open(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	res := driveChecked(b, db, spec, RunConfig{Strategy: st, Ops: b.N, Seed: 1})
	b.ReportMetric(res.Throughput, "commits/s")
	b.ReportMetric(res.AbortsPer, "aborts/op")
	b.ReportMetric(res.RetriesPer, "retries/op")
	b.ReportMetric(float64(res.P99)/float64(time.Millisecond), "p99-ms")
	if res.Failed > 0 {
		b.ReportMetric(float64(res.Failed)/float64(b.N), "failed/op")
	}
}
