package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/txkv/txkv/bench"
)

// report is everything a run produced, as printed and as results.json.
type report struct {
	Started  time.Time         `json:"started"`
	Elapsed  time.Duration     `json:"elapsed_ns"`
	Machine  map[string]string `json:"machine"`
	Settings map[string]string `json:"settings"`
	Runs     []rep             `json:"runs"`  // every run of every cell
	Cells    []cell            `json:"cells"` // each cell over its runs
	Verdicts []verdict         `json:"verdicts"`
}

func newReport(f flags, p plan, reps []rep, elapsed time.Duration) *report {
	r := &report{
		Started: time.Now().Add(-elapsed), Elapsed: elapsed, Machine: machine(), Runs: reps, Cells: aggregate(reps),
		Settings: map[string]string{
			"duration": f.duration.String(), "runs": fmt.Sprint(f.runs), "workers": fmt.Sprint(f.workers),
			"contention": f.contention, "think": f.think.String(), "mem": fmt.Sprint(f.mem), "sync": f.sync,
			"seed": fmt.Sprint(f.seed), "quick": fmt.Sprint(f.quick),
		},
	}
	for _, s := range p.specs {
		if v, ok := judge(s, reps); ok {
			r.Verdicts = append(r.Verdicts, v)
		}
	}
	return r
}

// failed are the runs that failed a check or could not finish.
func (r *report) failed() int {
	n := 0
	for _, x := range r.Runs {
		if x.Problem() != "" {
			n++
		}
	}
	return n
}

func (r *report) allOK() bool { return r.failed() == 0 }

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "txkvbench: %d cells × %s runs in %s on %s/%s, %s CPUs, %s; %s per run, %s workers, sync=%s mem=%s\n",
		len(r.Cells), r.Settings["runs"], r.Elapsed.Round(time.Second), r.Machine["os"], r.Machine["arch"],
		r.Machine["cpus"], r.Machine["go"], r.Settings["duration"], r.Settings["workers"], r.Settings["sync"], r.Settings["mem"])
	fmt.Fprint(w, legend)
	for _, v := range r.Verdicts {
		r.printWorkload(w, v)
	}
	r.printSummary(w)
}

const legend = `
ops/s: the mean over the runs, ± the half-width of its 95% confidence interval.
aborts: attempts ended by contention (a failed validation, a deadlock, a lock timeout) / all
attempts; a business refusal is not one, nor a version mismatch (merges/op: mismatches the
editor merged and resubmitted). write p50/p99: operations that committed a write, each waiting
for its log record to be durable; read: read-only operations (median over the runs).
check: the workload's invariant, and no deadlock where the recipe promises none.
* = the fastest mean at that hot-set size.
`

func (r *report) printWorkload(w io.Writer, v verdict) {
	s, _ := bench.Lookup(v.Workload)
	fmt.Fprintf(w, "\n== %s: %s ==\n", s.Name, s.Title)
	if s.Recipe != "" {
		fmt.Fprintf(w, "recipe: %s\n", s.Recipe)
	}
	cells := r.cellsOf(v.Workload)
	merges := slices.ContainsFunc(cells, func(c cell) bool { return c.MergesPer > 0 })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, header(merges))
	for _, c := range cells {
		fmt.Fprintln(tw, row(c, v.LevelWinners[c.HotSet] == c.Strategy, merges))
	}
	_ = tw.Flush()
	for _, c := range cells {
		if c.FailedErr != "" {
			fmt.Fprintf(w, "  %s hot=%d: %d operations gave up, e.g. %s\n", c.Strategy, c.HotSet, c.Failed, c.FailedErr)
		}
	}
	fmt.Fprintf(w, "guide: %s (%s)\nmeasured: %s -> %s\n",
		v.Advised, strings.Join(v.Reasons, "; "), measured(v), v.Call)
}

func (r *report) cellsOf(workload string) []cell {
	var out []cell
	for _, c := range r.Cells {
		if c.Workload == workload {
			out = append(out, c)
		}
	}
	return out
}

func header(merges bool) string {
	h := "hot set\tstrategy\tops/s\t±95%\taborts\tretries/op\tdeadlocks/op\t"
	if merges {
		h += "merges/op\t"
	}
	return h + "write p50\twrite p99\tread p50\tread p99\t  check" // unterminated: left-aligned, unpadded
}

func row(c cell, fastest, merges bool) string {
	mark := ""
	if fastest {
		mark = " *"
	}
	b := fmt.Sprintf("%d\t%s\t%.0f%s\t%s\t%.1f%%\t%.2f\t%.2f\t", c.HotSet, c.Strategy, c.Throughput, mark,
		pct(c.CI, c.Throughput, c.Runs), 100*c.AbortRate, c.RetriesPer, c.DeadlocksPer)
	if merges {
		b += fmt.Sprintf("%.2f\t", c.MergesPer)
	}
	return b + fmt.Sprintf("%s\t%s\t%s\t%s\t  %s", lat(c.Write, c.Write.P50), lat(c.Write, c.Write.P99),
		lat(c.Read, c.Read.P50), lat(c.Read, c.Read.P99), check(c))
}

// pct prints a confidence interval as a share of the mean; "-" with one run.
func pct(half, mean float64, runs int) string {
	if runs < 2 || mean <= 0 {
		return "-"
	}
	return fmt.Sprintf("±%.0f%%", 100*half/mean)
}

func lat(l bench.Latency, d time.Duration) string {
	if l.N == 0 {
		return "-"
	}
	return ms(d)
}

func check(c cell) string {
	if c.Problem == "" {
		return "ok"
	}
	return c.Problem
}

// measured says who won and by how much over the guide's choice.
func measured(v verdict) string {
	if v.Winner == v.Advised || v.Pairs == 0 {
		return v.Winner
	}
	return fmt.Sprintf("%s, %s over %s (95%% CI, %d paired runs)", v.Winner, lead(v), v.Advised, v.Pairs)
}

func lead(v verdict) string {
	if v.Pairs < 2 {
		return fmt.Sprintf("%+.1f%%", 100*v.Lead)
	}
	return fmt.Sprintf("%+.1f%% ± %.1f%%", 100*v.Lead, 100*v.LeadCI)
}

func (r *report) printSummary(w io.Writer) {
	fmt.Fprintf(w, "\nSummary (lower hot set = more contention; \"%s\": the winner's lead over the guide's choice "+
		"is inside its 95%% confidence interval, over %s runs of every cell):\n", callNoise, r.Settings["runs"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tguide\tmeasured\tlead over guide\tverdict") // the last cell unpadded: no trailing blanks
	for _, v := range r.Verdicts {
		l := "-"
		if v.Winner != v.Advised && v.Pairs > 0 {
			l = lead(v)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Workload, v.Advised, v.Winner, l, v.Call)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, r.summaryLine())
}

// summaryLine is the run in one line: the verdicts by call, then the checks.
// It is the last line of the table (CI prints the tail).
func (r *report) summaryLine() string {
	var calls []string
	for _, c := range []string{callAgree, callNoise, callDisagree, callOneRun, callNotRun, callNoWinner} {
		if n := countCalls(r.Verdicts, c); n > 0 {
			calls = append(calls, fmt.Sprintf("%d %s", n, c))
		}
	}
	checks := fmt.Sprintf("all %d runs passed their checks", len(r.Runs))
	if n := r.failed(); n > 0 {
		checks = fmt.Sprintf("%d of %d runs FAILED a check (see the tables)", n, len(r.Runs))
	}
	return fmt.Sprintf("txkvbench: guide vs measured: %s; %s", strings.Join(calls, ", "), checks)
}

func countCalls(vs []verdict, call string) int {
	n := 0
	for _, v := range vs {
		if v.Call == call {
			n++
		}
	}
	return n
}

// ms prints a latency compactly: µs below a millisecond.
func ms(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// write saves results.json and the charts into dir.
func (r *report) write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	for _, v := range r.Verdicts {
		if err := chart(filepath.Join(dir, v.Workload+".png"), v, r.cellsOf(v.Workload), r.details()); err != nil {
			return fmt.Errorf("chart %s: %w", v.Workload, err)
		}
	}
	return nil
}

// details is the run in one line, for the charts: where and how it was
// measured, and when.
func (r *report) details() string {
	where := "on disk, sync=" + r.Settings["sync"]
	if r.Settings["mem"] == "true" {
		where = "in memory"
	}
	return fmt.Sprintf("txkvbench %s · %s · %s runs × %s per cell, interleaved · %s workers · %s CPUs (GOMAXPROCS %s), %s/%s, %s · error bars: 95%% CI",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), where, r.Settings["runs"], r.Settings["duration"],
		r.Settings["workers"], r.Machine["cpus"], r.Machine["gomaxprocs"], r.Machine["os"], r.Machine["arch"], r.Machine["go"])
}
