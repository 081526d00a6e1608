// Command txkvbench runs the decision guide's eight workloads under the four
// strategies at several contention levels, prints a table per workload with
// the guide's recommendation against the measured winner, and writes
// results.json and one chart per workload.
//
//	go run ./bench/cmd/txkvbench -quick            # the whole matrix in about a minute
//	go run ./bench/cmd/txkvbench -workload bank,likes -strategy pessimistic,optimistic \
//	    -contention 2,20,200 -duration 5s -workers 16 -out /tmp/r
//
// It exits 1 if any invariant failed or any run could not finish, 2 on a
// usage error.
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

	"github.com/schollz/progressbar/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/bench"
)

// flags are the command line.
type flags struct {
	quick      bool
	duration   time.Duration
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
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("txkvbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&f.quick, "quick", false, "short runs (about 300ms per cell): the whole matrix in about a minute")
	fs.DurationVar(&f.duration, "duration", 2*time.Second, "how long each workload × strategy × contention cell runs")
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
	fs.BoolVar(&f.noProgress, "no-progress", false, "hide the progress bar")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if f.quick {
		f.duration = 300 * time.Millisecond
	}
	if f.duration <= 0 || f.workers <= 0 {
		return f, errors.New("-duration and -workers must be positive")
	}
	if f.sync != "always" && f.sync != "none" {
		return f, fmt.Errorf("-sync %q: want always or none", f.sync)
	}
	return f, nil
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
	start := time.Now()
	results, runErr := runMatrix(ctx, f, p, stderr)
	rep := newReport(f, p, results, time.Since(start))
	rep.print(stdout)
	if err := rep.write(f.out); err != nil {
		fmt.Fprintln(stderr, "txkvbench:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\nwrote %s and %d charts in %s (%s total)\n",
		filepath.Join(f.out, "results.json"), len(p.specs), f.out, time.Since(start).Round(time.Second))
	if runErr != nil {
		fmt.Fprintln(stderr, "txkvbench:", runErr)
		return 1
	}
	if !rep.allOK() {
		fmt.Fprintln(stderr, "txkvbench: an invariant failed (see the table)")
		return 1
	}
	return 0
}

// runMatrix runs every cell; for each workload and contention level the
// strategies run one after another, so slow drift of the machine hits them
// alike. It stops at the first run that cannot finish.
func runMatrix(ctx context.Context, f flags, p plan, stderr io.Writer) ([]bench.Result, error) {
	cells := len(p.specs) * len(p.levels) * len(p.strategies)
	bar := progressbar.NewOptions(cells,
		progressbar.OptionSetWriter(stderr), progressbar.OptionSetVisibility(!f.noProgress),
		progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetElapsedTime(true), progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish())
	defer func() { _ = bar.Finish() }()
	var out []bench.Result
	for _, s := range p.specs {
		for _, level := range p.levels {
			for _, st := range p.strategies {
				bar.Describe(fmt.Sprintf("%-9s %-11s hot=%-5d", s.Name, st, hotSet(s, level)))
				res, err := runCell(ctx, f, s, st, hotSet(s, level))
				out = append(out, res)
				_ = bar.Add(1)
				if err != nil {
					return out, fmt.Errorf("%s/%s hot=%d: %w", s.Name, st, hotSet(s, level), err)
				}
			}
		}
	}
	return out, nil
}

// runCell runs one workload × strategy × hot-set cell on a fresh database.
func runCell(ctx context.Context, f flags, s bench.Spec, st txkv.Strategy, hot int) (bench.Result, error) {
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
	cfg := bench.Config{HotSet: hot, Think: f.think}
	res, err := bench.Run(ctx, db, s, cfg, bench.RunConfig{
		Strategy: st, Workers: f.workers, Duration: f.duration, Seed: f.seed,
	})
	res.Strategy = st.String()
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
