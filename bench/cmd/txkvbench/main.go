// Command txkvbench runs the decision guide's eight workloads under the four
// strategies at several contention levels, each workload written the way the
// guide tells users to write it for each strategy (bench.Spec.Recipe). It runs
// every cell several times, interleaved, prints a table per workload with the
// guide's recommendation against the measured winner — "within noise" when
// the winner's lead is inside its 95% confidence interval — and writes
// results.json and one chart per workload.
//
//	go run ./bench/cmd/txkvbench                   # 3 runs × 1s per cell: about 5 minutes on 2 cores
//	go run ./bench/cmd/txkvbench -quick            # 3 runs × 100ms per cell: about 32 s (what CI runs)
//	go run ./bench/cmd/txkvbench -workload bank,likes -strategy pessimistic,optimistic \
//	    -contention 2,20,200 -duration 5s -runs 5 -workers 16 -out /tmp/r
//
// It exits 1 if any invariant failed, any run could not finish, or a recipe
// that promises no deadlocks (pessimistic, locks in canonical order) had one;
// 2 on a usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/bench"
)

// flags are the command line.
type flags struct {
	quick      bool
	duration   time.Duration
	runs       int
	workers    int
	contention string
	workloads  string
	strategies string
	think      time.Duration
	mem        bool
	sync       string
	out        string
	seed       uint64
	noProgress bool
	serve      string // -serve ADDR: the slow demo with the live view (serve.go)
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("txkvbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&f.quick, "quick", false, "short cells (-duration "+quickDuration.String()+" unless set): "+
		"the whole matrix in "+quickTook+"; the default takes "+defaultTook)
	fs.DurationVar(&f.duration, "duration", time.Second, "how long each run of a workload × strategy × contention cell lasts")
	fs.IntVar(&f.runs, "runs", 3, "runs of each cell, interleaved across the strategies: the noise estimate "+
		"behind \"within noise\" (1: none)")
	fs.IntVar(&f.workers, "workers", 8, "concurrent goroutines per cell")
	fs.StringVar(&f.contention, "contention", "high,medium,low",
		"contention levels: names (high, medium, low: each workload's own hot-set sizes) or hot-set sizes (e.g. 10,100,1000)")
	fs.StringVar(&f.workloads, "workload", "all", "comma-separated workloads: "+strings.Join(bench.Names(), ","))
	fs.StringVar(&f.strategies, "strategy", "all", "comma-separated strategies: pessimistic,optimistic,hybrid,adaptive")
	fs.DurationVar(&f.think, "think", 0, "think time inside each transaction (0: each workload's default; negative: none)")
	fs.BoolVar(&f.mem, "mem", false, "in-memory databases instead of a temporary on-disk one per cell")
	fs.StringVar(&f.sync, "sync", "always", "on-disk durability: always (fsync every commit batch) or none")
	fs.StringVar(&f.out, "out", "bench-results", "directory for results.json and the charts")
	fs.Uint64Var(&f.seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	fs.BoolVar(&f.noProgress, "no-progress", false, "hide the progress on stderr (a bar on a terminal, elsewhere a line every 10 s)")
	fs.StringVar(&f.serve, "serve", "", "serve the live view on ADDR (\":6060\" binds localhost) and run the workloads one after "+
		"another, slowly enough to watch, until interrupted (-runs: that many rounds); defaults become -duration "+
		serveDuration.String()+" -think "+serveThink.String()+" -contention high")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.serve != "" {
		serveDefaults(fs, &f)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if f.quick && !isSet(fs, "duration") {
		f.duration = quickDuration
	}
	if f.duration <= 0 || f.runs < 0 || (f.runs == 0 && f.serve == "") || f.workers <= 0 {
		return f, errors.New("-duration, -runs and -workers must be positive")
	}
	if f.sync != "always" && f.sync != "none" {
		return f, fmt.Errorf("-sync %q: want always or none", f.sync)
	}
	return f, nil
}

// quickDuration is -quick's time per run; quickTook and defaultTook are what
// the whole matrix measured on 2 cores, on disk (README quotes them: update
// both when the matrix or the engine changes).
const (
	quickDuration = 100 * time.Millisecond
	quickTook     = "about 32 s on 2 cores"
	defaultTook   = "about 5 minutes"
)

// isSet reports whether the command line set the flag.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// plan is what to run.
type plan struct {
	specs      []bench.Spec
	strategies []txkv.Strategy
	levels     []string // "high", "medium", "low" or hot-set sizes
}

func makePlan(f flags) (plan, error) {
	var p plan
	if f.workloads == "all" {
		p.specs = bench.Workloads()
	} else {
		for _, name := range strings.Split(f.workloads, ",") {
			s, err := bench.Lookup(strings.TrimSpace(name))
			if err != nil {
				return p, err
			}
			p.specs = append(p.specs, s)
		}
	}
	if f.strategies == "all" {
		p.strategies = bench.Strategies()
	} else {
		for _, name := range strings.Split(f.strategies, ",") {
			s, err := bench.ParseStrategy(strings.TrimSpace(name))
			if err != nil {
				return p, err
			}
			p.strategies = append(p.strategies, s)
		}
	}
	for _, l := range strings.Split(f.contention, ",") {
		l = strings.TrimSpace(l)
		if _, ok := levelIndex[l]; !ok {
			if n, err := strconv.Atoi(l); err != nil || n < 2 {
				return p, fmt.Errorf("-contention %q: want high, medium, low or a hot-set size >= 2", l)
			}
		}
		p.levels = append(p.levels, l)
	}
	return p, nil
}

var levelIndex = map[string]int{"high": 0, "medium": 1, "low": 2}

// hotSet is the hot-set size a level means for a workload.
func hotSet(s bench.Spec, level string) int {
	if i, ok := levelIndex[level]; ok {
		return s.Sweep[min(i, len(s.Sweep)-1)]
	}
	n, _ := strconv.Atoi(level)
	return n
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
		return 2
	}
	p, err := makePlan(f)
	if err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if f.serve != "" {
		return serve(ctx, f, p, stdout, stderr)
	}
	start := time.Now()
	reps, runErr := runMatrix(ctx, f, p, newProgress(stderr, p.runs(f), f.noProgress))
	rep := newReport(f, p, reps, time.Since(start))
	rep.print(stdout)
	if err := rep.write(f.out); err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
		return 1
	}
	charts := "charts"
	if len(rep.Verdicts) == 1 {
		charts = "chart"
	}
	fmt.Fprintf(stdout, "wrote %s and %d %s in %s (%s total)\n",
		filepath.Join(f.out, "results.json"), len(rep.Verdicts), charts, f.out, time.Since(start).Round(time.Second))
	if runErr != nil {
		fmt.Fprintln(stderr, "txkvbench:", runErr)
		return 1
	}
	if !rep.allOK() {
		fmt.Fprintln(stderr, "txkvbench: a check failed: an invariant, or a deadlock the recipe promises cannot happen (see the table)")
		return 1
	}
	return 0
}

// runs is how many runs the plan makes.
func (p plan) runs(f flags) int { return len(p.specs) * len(p.levels) * len(p.strategies) * f.runs }

// runMatrix runs every cell f.runs times. For each workload and contention
// level, a repetition runs every strategy back to back, so slow drift of the
// machine hits them alike and the verdict can compare them run by run; the
// order of the strategies rotates between repetitions, so none is always
// first after a change of workload. It stops at the first run that cannot
// finish.
func runMatrix(ctx context.Context, f flags, p plan, prog progress) ([]rep, error) {
	defer prog.finish()
	var out []rep
	for _, s := range p.specs {
		for _, level := range p.levels {
			hot := hotSet(s, level)
			for i := range f.runs {
				for j := range p.strategies {
					st := p.strategies[(i+j)%len(p.strategies)]
					prog.start(fmt.Sprintf("%-9s %-11s hot=%-5d run %d/%d", s.Name, st, hot, i+1, f.runs))
					res, err := runCell(ctx, f, s, st, hot, f.seed+uint64(i))
					out = append(out, rep{res, i})
					prog.done()
					if err != nil {
						return out, fmt.Errorf("%s/%s hot=%d: %w", s.Name, st, hot, err)
					}
				}
			}
		}
	}
	return out, nil
}

// runCell runs one workload × strategy × hot-set cell on a fresh database.
// The strategies of one repetition share a seed: the same random operations.
// A run that could not finish still names its cell, and says why in Err.
func runCell(ctx context.Context, f flags, s bench.Spec, st txkv.Strategy, hot int, seed uint64) (bench.Result, error) {
	res, err := runOn(ctx, f, s, bench.Config{HotSet: hot, Think: f.think},
		bench.RunConfig{Strategy: st, Workers: f.workers, Duration: f.duration, Seed: seed})
	res.Workload, res.Strategy, res.HotSet = s.Name, st.String(), hot
	if err != nil && res.Err == "" {
		res.Err = err.Error()
	}
	return res, err
}

func runOn(ctx context.Context, f flags, s bench.Spec, cfg bench.Config, rc bench.RunConfig) (bench.Result, error) {
	path, cleanup, err := dbPath(f)
	if err != nil {
		return bench.Result{}, err
	}
	defer cleanup()
	opts := txkv.DefaultOptions()
	if f.sync == "none" {
		opts.Sync = txkv.SyncNone
	}
	db, err := txkv.Open(path, opts)
	if err != nil {
		return bench.Result{}, err
	}
	res, err := bench.Run(ctx, db, s, cfg, rc)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return res, err
}

func dbPath(f flags) (string, func(), error) {
	if f.mem {
		return "", func() {}, nil
	}
	dir, err := os.MkdirTemp("", "txkvbench-")
	if err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, "bench.db"), func() { _ = os.RemoveAll(dir) }, nil
}

// machine describes where the numbers came from.
func machine() map[string]string {
	host, _ := os.Hostname()
	return map[string]string{
		"go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
		"cpus": strconv.Itoa(runtime.NumCPU()), "gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)), "host": host,
	}
}
