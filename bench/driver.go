package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

// RunConfig says how to drive a workload.
type RunConfig struct {
	Strategy txkv.Strategy
	Workers  int           // concurrent goroutines; 0 = 8
	Duration time.Duration // stop issuing operations after this long...
	Ops      int           // ...or after this many (whichever is set; Ops wins)
	Seed     uint64        // per-worker random streams derive from it
	// Retry is Update's retry policy; nil = 50 attempts, the library's
	// backoff. Generous on purpose: a benchmark measures the cost of
	// retrying, and a give-up is reported as Failed, not hidden.
	Retry *txkv.RetryPolicy
	// OnOp, if set, is called after every finished operation (progress).
	OnOp func()
}

// Result is what one run measured.
type Result struct {
	Workload string        `json:"workload"`
	Strategy string        `json:"strategy"`
	HotSet   int           `json:"hot_set"`
	Think    time.Duration `json:"think_ns"`
	Workers  int           `json:"workers"`
	Elapsed  time.Duration `json:"elapsed_ns"`

	Ops       uint64 `json:"ops"`                    // finished: committed or rejected by the business rule
	Committed uint64 `json:"committed"`              // Update returned nil
	Rejected  uint64 `json:"rejected"`               // ErrRejected
	Failed    uint64 `json:"failed"`                 // gave up: retries exhausted, lock timeout
	FailedErr string `json:"failed_error,omitempty"` // the first such error

	// From db.Stats(), the difference over the run.
	Attempts uint64 `json:"attempts"` // transactions that ended, committed or aborted: Update's attempts and View
	// Aborts are the attempts contention ended: a failed validation, a
	// deadlock victim, a lock timeout or a NOWAIT refusal. A business
	// refusal or a version mismatch also rolls its transaction back, but
	// is the workload answering, not contention; it is not counted here.
	Aborts       uint64 `json:"aborts"`
	Retries      uint64 `json:"retries"`
	Conflicts    uint64 `json:"conflicts"`
	Deadlocks    uint64 `json:"deadlocks"`
	LockWaits    uint64 `json:"lock_waits"`
	LockTimeouts uint64 `json:"lock_timeouts"`
	// Merges are PutIfVersion refusals (ErrVersionMismatch) the workload
	// merged and resubmitted: the optimistic version check doing its job.
	Merges uint64 `json:"merges"`

	Throughput   float64 `json:"ops_per_sec"` // Ops / Elapsed
	AbortRate    float64 `json:"abort_rate"`  // Aborts / Attempts
	AbortsPer    float64 `json:"aborts_per_op"`
	RetriesPer   float64 `json:"retries_per_op"`
	DeadlocksPer float64 `json:"deadlocks_per_op"`
	MergesPer    float64 `json:"merges_per_op"`

	// Every finished or failed operation.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// Write is the latency of the operations that committed a write (each
	// waits for its log record to be durable); Read that of the read-only
	// operations. Apart, because a median over both is the reads' median
	// when reads are most of the operations.
	Write Latency `json:"write_latency"`
	Read  Latency `json:"read_latency"`

	Extra map[string]uint64 `json:"extra,omitempty"` // the instance's Counters

	InvariantOK  bool   `json:"invariant_ok"`
	InvariantErr string `json:"invariant_error,omitempty"`
	// DeadlockFree says the recipe promises no deadlocks under this strategy
	// (Spec.DeadlockFree); DeadlockErr says it broke that promise.
	DeadlockFree bool   `json:"deadlock_free"`
	DeadlockErr  string `json:"deadlock_error,omitempty"`
	Err          string `json:"error,omitempty"` // a run that could not finish
}

// Latency summarizes the latencies of one kind of operation.
type Latency struct {
	N   int           `json:"n"` // operations sampled
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// Problem says what went wrong in the run, or "": an error that stopped it,
// a broken invariant, or a deadlock the recipe promises cannot happen.
func (r Result) Problem() string {
	switch {
	case r.Err != "":
		return "ERROR: " + r.Err
	case !r.InvariantOK:
		return "FAIL: " + r.InvariantErr
	case r.DeadlockErr != "":
		return "FAIL: " + r.DeadlockErr
	}
	return ""
}

// Run loads the workload into db, drives it and checks its invariant. The
// returned error is a setup or driver failure; an invariant failure is
// reported in the Result (InvariantOK false) so the caller can go on.
func Run(ctx context.Context, db *txkv.DB, spec Spec, cfg Config, rc RunConfig) (Result, error) {
	inst := spec.New(cfg)
	if err := inst.Setup(ctx, db); err != nil {
		return Result{}, fmt.Errorf("txkv: bench: %s setup: %w", spec.Name, err)
	}
	res, err := Drive(ctx, db, inst, rc)
	res.Workload, res.HotSet, res.Think = spec.Name, cfg.hotSet(spec.HotSet), cfg.think(spec.Think)
	if err != nil {
		res.Err = err.Error()
		return res, err
	}
	Verify(ctx, db, inst, &res)
	checkDeadlocks(spec, rc.Strategy, &res)
	return res, nil
}

// checkDeadlocks holds the run to its recipe's promise: a pessimistic recipe
// that takes its locks in one canonical order cannot deadlock (guide §4), so
// a deadlock there is a bug in the workload or the lock manager.
func checkDeadlocks(spec Spec, st txkv.Strategy, res *Result) {
	res.DeadlockFree = spec.DeadlockFree(st)
	if res.DeadlockFree && res.Deadlocks > 0 {
		res.DeadlockErr = fmt.Sprintf("%d deadlocks under %s, whose recipe takes its locks in canonical order "+
			"(guide §4): a bug", res.Deadlocks, st)
	}
}

// Verify runs the instance's Check and records the verdict in res.
func Verify(ctx context.Context, db *txkv.DB, inst Instance, res *Result) {
	if err := inst.Check(ctx, db); err != nil {
		res.InvariantOK, res.InvariantErr = false, err.Error()
		return
	}
	res.InvariantOK = true
}

// Drive runs inst's operations from rc.Workers goroutines and measures them.
// It does not call Setup or Check (benchmarks time only this part).
func Drive(ctx context.Context, db *txkv.DB, inst Instance, rc RunConfig) (Result, error) {
	workers := rc.Workers
	if workers <= 0 {
		workers = 8
	}
	if rc.Ops <= 0 && rc.Duration <= 0 {
		return Result{}, errors.New("txkv: bench: RunConfig needs Ops or Duration")
	}
	retry := rc.Retry
	if retry == nil {
		retry = &txkv.RetryPolicy{MaxAttempts: 50}
	}
	opts := &txkv.TxOptions{Strategy: rc.Strategy, Retry: retry}
	d := &driver{ctx: ctx, db: db, inst: inst, opts: opts, rc: rc}
	before := db.Stats()
	start := time.Now()
	d.deadline = start.Add(rc.Duration) // from start: Elapsed covers the whole Duration
	var wg sync.WaitGroup
	lat := make([][]sample, workers)
	for i := range workers {
		wg.Go(func() { lat[i] = d.loop(NewWorker(i, rc.Seed)) })
	}
	wg.Wait()
	res := d.result(time.Since(start), before, db.Stats(), slices.Concat(lat...))
	res.Strategy, res.Workers = rc.Strategy.String(), workers
	if c, ok := inst.(Counters); ok {
		res.Extra = c.Counters()
	}
	if err := d.fatal.Load(); err != nil {
		return res, *err
	}
	return res, nil
}

// driver is the state the worker goroutines share; only atomics.
type driver struct {
	ctx      context.Context
	db       *txkv.DB
	inst     Instance
	opts     *txkv.TxOptions
	rc       RunConfig
	deadline time.Time

	issued                      atomic.Int64
	committed, rejected, failed atomic.Uint64
	failedErr                   atomic.Pointer[error] // the first give-up, as an example
	fatal                       atomic.Pointer[error] // the first unexpected error stops every worker
}

// maxSamples bounds each worker's latency samples; past it, reservoir
// sampling (Vitter's algorithm R) keeps a uniform sample.
const maxSamples = 1 << 17

// sample is one operation's latency and kind. One reservoir for all kinds:
// the samples of one kind in a uniform sample of all operations are a
// uniform sample of that kind.
type sample struct {
	d    time.Duration
	kind opKind
}

type opKind uint8

const (
	opOther opKind = iota // a write refused by the business rule, or given up
	opRead                // a read-only operation
	opWrite               // an operation that committed a write
)

func kindOf(w *Worker, err error) opKind {
	switch {
	case w.readOnly:
		return opRead
	case err == nil:
		return opWrite
	}
	return opOther
}

func (d *driver) loop(w *Worker) []sample {
	var lat []sample
	seen := 0
	for d.more() {
		w.readOnly = false
		t0 := time.Now()
		err := d.inst.Op(d.ctx, d.db, d.opts, w)
		s := sample{time.Since(t0), kindOf(w, err)}
		if !d.account(err) {
			return lat
		}
		seen++
		if len(lat) < maxSamples {
			lat = append(lat, s)
		} else if j := w.Rand.IntN(seen); j < maxSamples {
			lat[j] = s
		}
		if d.rc.OnOp != nil {
			d.rc.OnOp()
		}
	}
	return lat
}

func (d *driver) more() bool {
	if d.fatal.Load() != nil || d.ctx.Err() != nil {
		return false
	}
	if d.rc.Ops > 0 {
		return d.issued.Add(1) <= int64(d.rc.Ops)
	}
	return time.Now().Before(d.deadline)
}

// account classifies one operation's outcome; false stops the worker.
func (d *driver) account(err error) bool {
	switch {
	case err == nil:
		d.committed.Add(1)
	case errors.Is(err, ErrRejected):
		d.rejected.Add(1)
	case txkv.IsRetryable(err), errors.Is(err, txkv.ErrLockTimeout), errors.Is(err, txkv.ErrLockNotAvailable):
		d.failed.Add(1) // contention won: the retries ran out
		d.failedErr.CompareAndSwap(nil, &err)
	default:
		d.fatal.CompareAndSwap(nil, &err)
		return false
	}
	return true
}

// contention are the abort reasons (Stats.AbortsByReason) that count as
// aborts: the ones contention causes. "rollback" (the callback returned an
// error: a business refusal, a version mismatch) and "cancelled" do not.
var contention = []string{"conflict", "deadlock", "timeout", "nowait"}

func (d *driver) result(el time.Duration, before, after txkv.Stats, lat []sample) Result {
	r := Result{
		Elapsed: el, Committed: d.committed.Load(), Rejected: d.rejected.Load(), Failed: d.failed.Load(),
		Attempts: after.Commits + after.Aborts - before.Commits - before.Aborts,
		Retries:  after.Retries - before.Retries, Conflicts: after.Conflicts - before.Conflicts,
		Deadlocks: after.Deadlocks - before.Deadlocks, LockWaits: after.LockWaits - before.LockWaits,
		LockTimeouts: after.LockTimeouts - before.LockTimeouts, Merges: after.VersionMismatches - before.VersionMismatches,
	}
	for _, reason := range contention {
		r.Aborts += after.AbortsByReason[reason] - before.AbortsByReason[reason]
	}
	r.Ops = r.Committed + r.Rejected
	if e := d.failedErr.Load(); e != nil {
		r.FailedErr = (*e).Error()
	}
	if el > 0 {
		r.Throughput = float64(r.Ops) / el.Seconds()
	}
	if r.Attempts > 0 {
		r.AbortRate = float64(r.Aborts) / float64(r.Attempts)
	}
	if n := float64(r.Ops + r.Failed); n > 0 {
		r.AbortsPer, r.RetriesPer = float64(r.Aborts)/n, float64(r.Retries)/n
		r.DeadlocksPer, r.MergesPer = float64(r.Deadlocks)/n, float64(r.Merges)/n
	}
	all := percentiles(lat, func(sample) bool { return true })
	r.P50, r.P90, r.P99, r.Max = all.P50, all.P90, all.P99, all.Max
	r.Write = percentiles(lat, func(s sample) bool { return s.kind == opWrite })
	r.Read = percentiles(lat, func(s sample) bool { return s.kind == opRead })
	return r
}

// percentiles summarizes the samples keep selects.
func percentiles(lat []sample, keep func(sample) bool) Latency {
	var ds []time.Duration
	for _, s := range lat {
		if keep(s) {
			ds = append(ds, s.d)
		}
	}
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return Latency{N: len(ds), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ds[len(ds)-1]}
}
