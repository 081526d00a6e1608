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
	Aborts       uint64 `json:"aborts"`
	Retries      uint64 `json:"retries"`
	Conflicts    uint64 `json:"conflicts"`
	Deadlocks    uint64 `json:"deadlocks"`
	LockWaits    uint64 `json:"lock_waits"`
	LockTimeouts uint64 `json:"lock_timeouts"`

	Throughput float64 `json:"ops_per_sec"` // Ops / Elapsed
	AbortRate  float64 `json:"abort_rate"`  // aborted attempts / all attempts
	AbortsPer  float64 `json:"aborts_per_op"`
	RetriesPer float64 `json:"retries_per_op"`

	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`

	Extra map[string]uint64 `json:"extra,omitempty"` // the instance's Counters

	InvariantOK  bool   `json:"invariant_ok"`
	InvariantErr string `json:"invariant_error,omitempty"`
	Err          string `json:"error,omitempty"` // a run that could not finish
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
	return res, nil
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
	lat := make([][]time.Duration, workers)
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

func (d *driver) loop(w *Worker) []time.Duration {
	var lat []time.Duration
	seen := 0
	for d.more() {
		t0 := time.Now()
		err := d.inst.Op(d.ctx, d.db, d.opts, w)
		el := time.Since(t0)
		if !d.account(err) {
			return lat
		}
		seen++
		if len(lat) < maxSamples {
			lat = append(lat, el)
		} else if j := w.Rand.IntN(seen); j < maxSamples {
			lat[j] = el
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

func (d *driver) result(el time.Duration, before, after txkv.Stats, lat []time.Duration) Result {
	r := Result{
		Elapsed: el, Committed: d.committed.Load(), Rejected: d.rejected.Load(), Failed: d.failed.Load(),
		Aborts: after.Aborts - before.Aborts, Retries: after.Retries - before.Retries,
		Conflicts: after.Conflicts - before.Conflicts, Deadlocks: after.Deadlocks - before.Deadlocks,
		LockWaits: after.LockWaits - before.LockWaits, LockTimeouts: after.LockTimeouts - before.LockTimeouts,
	}
	r.Ops = r.Committed + r.Rejected
	if e := d.failedErr.Load(); e != nil {
		r.FailedErr = (*e).Error()
	}
	if el > 0 {
		r.Throughput = float64(r.Ops) / el.Seconds()
	}
	// Every operation is one or more attempts, each ending in a commit, an
	// abort, or a rejection's rollback. The engine counts that rollback as
	// an abort too; it is not contention, so subtract it. A failed
	// operation's last attempt is one of the aborts.
	aborts := r.Aborts - min(r.Aborts, r.Rejected)
	if attempts := r.Ops + aborts; attempts > 0 {
		r.AbortRate = float64(aborts) / float64(attempts)
	}
	if n := r.Ops + r.Failed; n > 0 {
		r.AbortsPer = float64(aborts) / float64(n)
		r.RetriesPer = float64(r.Retries) / float64(n)
	}
	r.P50, r.P90, r.P99, r.Max = percentiles(lat)
	return r
}

func percentiles(lat []time.Duration) (p50, p90, p99, maxv time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	return at(0.50), at(0.90), at(0.99), lat[len(lat)-1]
}
