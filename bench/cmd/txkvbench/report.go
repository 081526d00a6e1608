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
	Results  []bench.Result    `json:"results"`
	Verdicts []verdict         `json:"verdicts"`
}

// verdict compares, for one workload, the guide's recommendation with the
// strategy that measured best.
type verdict struct {
	Workload string   `json:"workload"`
	Advised  string   `json:"advised"`
	Reasons  []string `json:"reasons"`
	Winner   string   `json:"winner"` // best mean of throughput relative to the level's best
	// LevelWinners is the fastest strategy at each hot-set size.
	LevelWinners map[int]string `json:"level_winners"`
	Agree        bool           `json:"agree"`
}

func newReport(f flags, p plan, results []bench.Result, elapsed time.Duration) *report {
	r := &report{
		Started: time.Now().Add(-elapsed), Elapsed: elapsed, Machine: machine(), Results: results,
		Settings: map[string]string{
			"duration": f.duration.String(), "workers": fmt.Sprint(f.workers), "contention": f.contention,
			"think": f.think.String(), "mem": fmt.Sprint(f.mem), "sync": f.sync, "seed": fmt.Sprint(f.seed),
			"quick": fmt.Sprint(f.quick),
		},
	}
	for _, s := range p.specs {
		if v, ok := judge(s, results); ok {
			r.Verdicts = append(r.Verdicts, v)
		}
	}
	return r
}

// judge finds a workload's winner among the strategies whose runs all kept
// the invariant: at each hot-set size, each strategy's throughput divided by
// the best; the winner has the highest mean of those.
func judge(s bench.Spec, results []bench.Result) (verdict, bool) {
	a := bench.Advise(s.Profile)
	v := verdict{Workload: s.Name, Advised: a.Strategy.String(), Reasons: a.Reasons, LevelWinners: map[int]string{}}
	best := map[int]float64{}
	disqualified := map[string]bool{}
	for _, r := range results {
		if r.Workload != s.Name {
			continue
		}
		if !r.InvariantOK || r.Err != "" {
			disqualified[r.Strategy] = true
		}
		if r.Throughput > best[r.HotSet] {
			best[r.HotSet], v.LevelWinners[r.HotSet] = r.Throughput, r.Strategy
		}
	}
	if len(best) == 0 {
		return v, false
	}
	score := map[string]float64{}
	for _, r := range results {
		if r.Workload == s.Name && best[r.HotSet] > 0 {
			score[r.Strategy] += r.Throughput / best[r.HotSet] / float64(len(best))
		}
	}
	for st, sc := range score {
		if !disqualified[st] && (v.Winner == "" || sc > score[v.Winner] || (sc == score[v.Winner] && st < v.Winner)) {
			v.Winner = st
		}
	}
	v.Agree = v.Winner == v.Advised
	return v, true
}

func (r *report) allOK() bool {
	return !slices.ContainsFunc(r.Results, func(x bench.Result) bool { return !x.InvariantOK || x.Err != "" })
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "txkvbench: %d cells in %s on %s/%s, %s CPUs, %s; %s per cell, %s workers, sync=%s mem=%s\n",
		len(r.Results), r.Elapsed.Round(time.Second), r.Machine["os"], r.Machine["arch"], r.Machine["cpus"],
		r.Machine["go"], r.Settings["duration"], r.Settings["workers"], r.Settings["sync"], r.Settings["mem"])
	for _, v := range r.Verdicts {
		s, _ := bench.Lookup(v.Workload)
		fmt.Fprintf(w, "\n== %s: %s ==\n", s.Name, s.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "hot set\tstrategy\tops/s\tabort rate\tretries/op\tp50\tp99\tfailed\tinvariant\t")
		for _, x := range r.Results {
			if x.Workload != v.Workload {
				continue
			}
			mark := ""
			if v.LevelWinners[x.HotSet] == x.Strategy {
				mark = " *"
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f%s\t%.1f%%\t%.2f\t%s\t%s\t%d\t%s\t\n", x.HotSet, x.Strategy, x.Throughput, mark,
				100*x.AbortRate, x.RetriesPer, ms(x.P50), ms(x.P99), x.Failed, invariant(x))
		}
		_ = tw.Flush()
		for _, x := range r.Results {
			if x.Workload == v.Workload && x.FailedErr != "" {
				fmt.Fprintf(w, "  %s hot=%d: %d operations gave up, e.g. %s\n", x.Strategy, x.HotSet, x.Failed, x.FailedErr)
			}
		}
		agree := "agree"
		if !v.Agree {
			agree = "DISAGREE"
		}
		fmt.Fprintf(w, "guide: %s (%s)\nmeasured winner: %s (* = fastest at that hot-set size) -> %s\n",
			v.Advised, strings.Join(v.Reasons, "; "), v.Winner, agree)
	}
	fmt.Fprintln(w, "\nSummary (lower hot set = more contention; numbers vary run to run and machine to machine):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tguide\tmeasured\t\t")
	for _, v := range r.Verdicts {
		agree := "agree"
		if !v.Agree {
			agree = "DISAGREE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", v.Workload, v.Advised, v.Winner, agree)
	}
	_ = tw.Flush()
}

func invariant(x bench.Result) string {
	switch {
	case x.Err != "":
		return "ERROR: " + x.Err
	case !x.InvariantOK:
		return "FAIL: " + x.InvariantErr
	}
	return "ok"
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
		if err := chart(filepath.Join(dir, v.Workload+".png"), v, r.Results); err != nil {
			return fmt.Errorf("chart %s: %w", v.Workload, err)
		}
	}
	return nil
}
