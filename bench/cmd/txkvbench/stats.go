package main

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/txkv/txkv/bench"
)

// rep is one repetition of a workload × strategy × hot-set cell. The
// strategies of one repetition run back to back, so comparing them rep by
// rep (paired) cancels the machine's slow drift.
type rep struct {
	bench.Result
	Rep int `json:"rep"`
}

// cell is one workload × strategy × hot set over all its repetitions.
type cell struct {
	Workload string `json:"workload"`
	Strategy string `json:"strategy"`
	HotSet   int    `json:"hot_set"`
	Runs     int    `json:"runs"`
	// Throughput is the mean over the runs; CI the half-width of its 95%
	// confidence interval (Student's t; 0 with one run).
	Throughput float64 `json:"ops_per_sec"`
	CI         float64 `json:"ops_per_sec_ci95"`
	// Rates pooled over the runs: sums divided by sums.
	AbortRate    float64 `json:"abort_rate"`
	RetriesPer   float64 `json:"retries_per_op"`
	DeadlocksPer float64 `json:"deadlocks_per_op"`
	MergesPer    float64 `json:"merges_per_op"`
	// Latencies: the median over the runs of each run's percentile.
	Write bench.Latency `json:"write_latency"`
	Read  bench.Latency `json:"read_latency"`

	Failed       uint64 `json:"failed"`
	FailedErr    string `json:"failed_error,omitempty"`
	DeadlockFree bool   `json:"deadlock_free"`
	Problem      string `json:"problem,omitempty"` // the first run's problem (Result.Problem)
}

// cellKey identifies a cell.
type cellKey struct {
	workload, strategy string
	hot                int
}

func keyOf(r bench.Result) cellKey { return cellKey{r.Workload, r.Strategy, r.HotSet} }

// aggregate folds the repetitions into cells, in the order they first ran.
func aggregate(reps []rep) []cell {
	var order []cellKey
	byKey := map[cellKey][]bench.Result{}
	for _, r := range reps {
		k := keyOf(r.Result)
		if _, ok := byKey[k]; !ok {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], r.Result)
	}
	cells := make([]cell, 0, len(order))
	for _, k := range order {
		cells = append(cells, fold(byKey[k]))
	}
	return cells
}

// fold summarizes the runs of one cell.
func fold(rs []bench.Result) cell {
	c := cell{Workload: rs[0].Workload, Strategy: rs[0].Strategy, HotSet: rs[0].HotSet, Runs: len(rs),
		DeadlockFree: rs[0].DeadlockFree}
	var tput []float64
	var ops, attempts, aborts, retries, deadlocks, merges uint64
	for _, r := range rs {
		tput = append(tput, r.Throughput)
		ops, attempts, aborts = ops+r.Ops+r.Failed, attempts+r.Attempts, aborts+r.Aborts
		retries, deadlocks, merges = retries+r.Retries, deadlocks+r.Deadlocks, merges+r.Merges
		c.Failed += r.Failed
		if c.FailedErr == "" {
			c.FailedErr = r.FailedErr
		}
		if c.Problem == "" {
			c.Problem = r.Problem()
		}
	}
	c.Throughput, c.CI = meanCI(tput)
	c.AbortRate = ratio(aborts, attempts)
	c.RetriesPer, c.DeadlocksPer, c.MergesPer = ratio(retries, ops), ratio(deadlocks, ops), ratio(merges, ops)
	c.Write = medianLatency(rs, func(r bench.Result) bench.Latency { return r.Write })
	c.Read = medianLatency(rs, func(r bench.Result) bench.Latency { return r.Read })
	return c
}

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// medianLatency takes, percentile by percentile, the median over the runs
// that sampled any operation of the kind: percentiles do not add up, and a
// median is not thrown by one run that hit a slow fsync.
func medianLatency(rs []bench.Result, of func(bench.Result) bench.Latency) bench.Latency {
	var n []int
	var p50, p90, p99, maxv []time.Duration
	for _, r := range rs {
		if l := of(r); l.N > 0 {
			n, p50, p90 = append(n, l.N), append(p50, l.P50), append(p90, l.P90)
			p99, maxv = append(p99, l.P99), append(maxv, l.Max)
		}
	}
	if len(n) == 0 {
		return bench.Latency{}
	}
	return bench.Latency{N: median(n), P50: median(p50), P90: median(p90), P99: median(p99), Max: median(maxv)}
}

// median is the middle value (the upper one of an even count).
func median[T cmp.Ordered](xs []T) T {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// meanCI returns the mean of xs and the half-width of its 95% confidence
// interval (0 for fewer than two values: no estimate of the noise).
func meanCI(xs []float64) (mean, half float64) {
	n := float64(len(xs))
	if n == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= n
	if len(xs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, tQuantile(len(xs)-1) * math.Sqrt(ss/(n-1)/n)
}

// tQuantile is Student's t at 97.5% with df degrees of freedom: the
// two-sided 95% interval. A handful of runs is the common case, where the
// normal 1.96 would understate the interval by a factor of two or more.
func tQuantile(df int) float64 {
	table := []float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	if df < 1 {
		return math.Inf(1)
	}
	return table[min(df, len(table))-1] // past 30: 2.042, slightly conservative
}
