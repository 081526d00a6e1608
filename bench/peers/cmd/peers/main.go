// Command peers runs the bank, inventory, job-queue, single-key-commit and
// hot-counter workloads on txkv (each strategy; the best is compared) and on bbolt
// (Update and Batch), Badger, BuntDB and SQLite, in one process, interleaved,
// with and without fsync, and prints throughput and txkv's ratio to each.
//
//	cd bench/peers && go run ./cmd/peers              # 3 reps × 300ms per cell
//	go run ./cmd/peers -reps 5 -duration 1s -durable off
//
// It exits 1 if any store broke a workload's invariant or failed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/bench/peers"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	reps := fs.Int("reps", 3, "repetitions per cell (the median is reported)")
	dur := fs.Duration("duration", 300*time.Millisecond, "length of one measurement")
	workers := fs.Int("workers", 16, "goroutines for the bank, inventory and queue rows")
	durable := fs.String("durable", "both", "fsync per commit: on, off or both")
	strategies := fs.String("strategies", "pessimistic,optimistic,hybrid,adaptive", "txkv strategies to run")
	only := fs.String("only", "", "comma-separated contender names to run (default all)")
	quick := fs.Bool("quick", false, "one 200ms repetition per cell")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *quick {
		*reps, *dur = 1, 200*time.Millisecond
	}
	var sts []txkv.Strategy
	for _, name := range strings.Split(*strategies, ",") {
		st, ok := map[string]txkv.Strategy{"pessimistic": txkv.Pessimistic, "optimistic": txkv.Optimistic,
			"hybrid": txkv.Hybrid, "adaptive": txkv.Adaptive}[strings.TrimSpace(name)]
		if !ok {
			fmt.Fprintf(stderr, "peers: unknown strategy %q\n", name)
			return 2
		}
		sts = append(sts, st)
	}
	modes := map[string][]bool{"on": {true}, "off": {false}, "both": {false, true}}[*durable]
	if modes == nil || *reps < 1 || *dur <= 0 || *workers < 1 {
		fmt.Fprintln(stderr, "peers: bad -durable, -reps, -duration or -workers")
		return 2
	}
	cs := peers.Contenders(sts)
	if *only != "" {
		keep := map[string]bool{}
		for _, n := range strings.Split(*only, ",") {
			keep[strings.TrimSpace(n)] = true
		}
		var kept []peers.Contender
		for _, c := range cs {
			if keep[c.Name] || (c.Txkv && keep["txkv"]) {
				kept = append(kept, c)
			}
		}
		cs = kept
	}
	var bar *progressbar.ProgressBar
	start := time.Now()
	cells := peers.Compare(cs, peers.Config{
		Durable: modes, Reps: *reps, Duration: *dur, Workers: *workers, Seed: uint64(time.Now().UnixNano()),
		Progress: func(done, total int, what string) {
			if bar == nil {
				bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
					progressbar.OptionSetPredictTime(true), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(),
					progressbar.OptionThrottle(100*time.Millisecond))
			}
			bar.Describe(fmt.Sprintf("%-40s", what))
			_ = bar.Set(done)
		},
	})
	if bar != nil {
		_ = bar.Finish()
	}
	fmt.Fprintf(stdout, "peers: %s/%s, %d CPUs, %s; %d reps × %s per cell (median), %d workers; %s total\n",
		runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version(), *reps, *dur, *workers,
		time.Since(start).Round(time.Second))
	ok := true
	for _, d := range modes {
		ok = table(stdout, cs, cells, d) && ok
	}
	if !ok {
		fmt.Fprintln(stderr, "peers: a store failed or broke an invariant (see ERR above)")
		return 1
	}
	return 0
}

// table prints one durability mode: throughput per contender, then txkv's
// best strategy and its ratio to each other store.
func table(w io.Writer, cs []peers.Contender, cells []peers.Cell, durable bool) bool {
	mode := "durability OFF (no fsync)"
	if durable {
		mode = "durability ON (fsync every commit)"
	}
	fmt.Fprintf(w, "\n== %s: operations/s, median ==\n", mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "row\t")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t", c.Name)
	}
	fmt.Fprintln(tw)
	ok := true
	byRow := map[string]map[string]peers.Cell{}
	var order []string
	for _, c := range cells {
		if c.Durable != durable {
			continue
		}
		if byRow[c.Row] == nil {
			byRow[c.Row] = map[string]peers.Cell{}
			order = append(order, c.Row)
		}
		byRow[c.Row][c.Contender] = c
	}
	for _, r := range order {
		fmt.Fprintf(tw, "%s\t", r)
		for _, c := range cs {
			cell, has := byRow[r][c.Name]
			switch {
			case !has:
				fmt.Fprint(tw, "-\t")
			case cell.Err != "":
				ok = false
				fmt.Fprint(tw, "ERR\t")
			default:
				s := rate(cell.Throughput)
				switch {
				case cell.DeadlocksPerOp > 0:
					s += fmt.Sprintf(" (%.2f ab/op, %.3f dl/op)", cell.AbortsPerOp, cell.DeadlocksPerOp)
				case cell.AbortsPerOp > 0.005:
					s += fmt.Sprintf(" (%.2f ab/op)", cell.AbortsPerOp)
				}
				fmt.Fprintf(tw, "%s\t", s)
			}
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	for _, r := range order {
		for _, c := range cs {
			if cell := byRow[r][c.Name]; cell.Err != "" {
				fmt.Fprintf(w, "ERR %s / %s: %s\n", r, c.Name, cell.Err)
			}
		}
	}
	fmt.Fprintf(w, "\n-- txkv's best strategy ÷ each store (>1: txkv ahead) --\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "row\ttxkv best\t")
	for _, c := range cs {
		if !c.Txkv {
			fmt.Fprintf(tw, "%s\t", c.Name)
		}
	}
	fmt.Fprintln(tw)
	for _, r := range order {
		best, bestName := 0.0, ""
		for _, c := range cs {
			if cell, has := byRow[r][c.Name]; has && c.Txkv && cell.Err == "" && cell.Throughput > best {
				best, bestName = cell.Throughput, strings.TrimPrefix(c.Name, "txkv ")
			}
		}
		fmt.Fprintf(tw, "%s\t%s %s\t", r, bestName, rate(best))
		for _, c := range cs {
			if c.Txkv {
				continue
			}
			cell, has := byRow[r][c.Name]
			if !has || cell.Err != "" || cell.Throughput == 0 || best == 0 {
				fmt.Fprint(tw, "-\t")
				continue
			}
			fmt.Fprintf(tw, "%.2f×\t", best/cell.Throughput)
		}
		fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	return ok
}

func rate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}
