package main

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/txkv/txkv/bench"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunWritesReport runs a tiny matrix and checks the tables, the summary,
// the JSON and the charts it promises.
func TestRunWritesReport(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-workload", "bank,collab", "-strategy", "pessimistic,optimistic", "-contention", "high,20",
		"-duration", "30ms", "-runs", "2", "-workers", "4", "-mem", "-no-progress", "-out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{
		"== bank: Bank transfer ==", "recipe: pessimistic: LockKeys(Exclusive, from, to)", "guide: pessimistic",
		"measured:", "deadlocks/op", "write p50", "read p99", "merges/op", "Summary",
		"txkvbench: guide vs measured: ", "all 16 runs passed their checks",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &stdout)
		}
	}
	if bank := section(stdout.String(), "bank"); strings.Contains(bank, "merges/op") {
		t.Errorf("bank has no version checks, yet its table has a merges column:\n%s", bank)
	}
	rep := readReport(t, out)
	if len(rep.Runs) != 2*2*2*2 || len(rep.Cells) != 2*2*2 || len(rep.Verdicts) != 2 {
		t.Fatalf("%d runs, %d cells, %d verdicts; want 16, 8 and 2", len(rep.Runs), len(rep.Cells), len(rep.Verdicts))
	}
	for _, r := range rep.Runs {
		if r.Problem() != "" || r.Ops == 0 {
			t.Errorf("%s/%s hot=%d run %d: %q, ops=%d", r.Workload, r.Strategy, r.HotSet, r.Rep, r.Problem(), r.Ops)
		}
	}
	for _, name := range []string{"bank.png", "collab.png"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() < 1000 {
			t.Errorf("chart %s: %v", name, err)
		}
	}
}

// section is the part of the output about one workload.
func section(out, workload string) string {
	_, s, _ := strings.Cut(out, "== "+workload+":")
	s, _, _ = strings.Cut(s, "\n== ")
	return s
}

func readReport(t *testing.T, dir string) report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-workload", "nope"}, {"-strategy", "psychic"}, {"-contention", "1"}, {"-sync", "sometimes"}, {"extra"},
		{"-runs", "0"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(append(args, "-no-progress", "-out", t.TempDir()), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestQuickFlag: -quick shortens the runs unless -duration says otherwise,
// and its help quotes the measured time the README quotes.
func TestQuickFlag(t *testing.T) {
	var help bytes.Buffer
	for _, tc := range []struct {
		args []string
		want time.Duration
	}{
		{[]string{"-quick"}, quickDuration},
		{[]string{"-quick", "-duration", "50ms"}, 50 * time.Millisecond},
		{nil, time.Second},
	} {
		f, err := parseFlags(tc.args, &help)
		if err != nil || f.duration != tc.want || f.runs != 3 {
			t.Errorf("%q: duration %v, runs %d, err %v; want %v, 3", tc.args, f.duration, f.runs, err, tc.want)
		}
	}
	if _, err := parseFlags([]string{"-h"}, &help); err == nil || !strings.Contains(help.String(), quickTook) {
		t.Errorf("-h does not say -quick takes %q:\n%s", quickTook, &help)
	}
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	words := strings.Join(strings.Fields(string(readme)), " ")
	for _, took := range []string{quickTook, defaultTook} {
		if !strings.Contains(words, took) {
			t.Errorf("README does not quote the runner's measured %q", took)
		}
	}
}

func TestJudge(t *testing.T) {
	spec := mustSpec(t, "bank") // the guide says pessimistic
	for _, tc := range []struct {
		name         string
		runs         []runLite
		winner, call string
	}{
		{"a steady lead", pair("pessimistic", "optimistic", []float64{100, 102, 98}, []float64{150, 151, 149}),
			"optimistic", callDisagree},
		{"a lead smaller than the noise", pair("pessimistic", "optimistic", []float64{100, 140, 90}, []float64{120, 100, 115}),
			"optimistic", callNoise},
		{"one run", pair("pessimistic", "optimistic", []float64{100}, []float64{150}), "optimistic", callOneRun},
		{"the guide wins", pair("pessimistic", "optimistic", []float64{150, 151}, []float64{100, 102}),
			"pessimistic", callAgree},
		{"the guide's choice not run", pair("hybrid", "optimistic", []float64{100, 100}, []float64{150, 150}),
			"optimistic", callNotRun},
	} {
		v, ok := judge(spec, toReps(tc.runs))
		if !ok || v.Winner != tc.winner || v.Call != tc.call {
			t.Errorf("%s: winner %q call %q, want %q %q (%+v)", tc.name, v.Winner, v.Call, tc.winner, tc.call, v)
		}
	}
}

func TestJudgeLeadAndLevels(t *testing.T) {
	rs := pair("pessimistic", "optimistic", []float64{100, 100, 100}, []float64{150, 160, 140})
	v, _ := judge(mustSpec(t, "bank"), toReps(rs))
	// Scores: pessimistic 100/150 = 2/3 on average, optimistic 1: a lead of 50%.
	if math.Abs(v.Lead-0.5) > 1e-9 || v.LeadCI <= 0 || v.Pairs != 3 {
		t.Fatalf("lead %.3f ± %.3f over %d pairs, want 0.500 ± >0 over 3", v.Lead, v.LeadCI, v.Pairs)
	}
	if v.LevelWinners[10] != "optimistic" || v.LevelWinners[100] != "optimistic" {
		t.Fatalf("level winners %v", v.LevelWinners)
	}
}

// TestJudgeFailedChecks: a strategy that failed a check cannot win, and the
// guide's choice failing one is a disagreement however close the numbers.
func TestJudgeFailedChecks(t *testing.T) {
	spec := mustSpec(t, "bank")
	rs := pair("pessimistic", "optimistic", []float64{100, 100}, []float64{200, 200})
	rs[1].ok = false // an optimistic run broke the invariant
	if v, _ := judge(spec, toReps(rs)); v.Winner != "pessimistic" || v.Call != callAgree {
		t.Fatalf("optimistic failed a check: %+v", v)
	}
	rs = pair("pessimistic", "optimistic", []float64{100, 100}, []float64{101, 99})
	reps := toReps(rs)
	reps[0].Deadlocks, reps[0].DeadlockErr = 2, "2 deadlocks under pessimistic"
	if v, _ := judge(spec, reps); v.Winner != "optimistic" || v.Call != callDisagree {
		t.Fatalf("the guide's choice deadlocked: %+v", v)
	}
}

func TestMeanCI(t *testing.T) {
	mean, half := meanCI([]float64{1, 2, 3})
	// sd 1, n 3, t(0.975, 2) = 4.303.
	if mean != 2 || math.Abs(half-4.303/math.Sqrt(3)) > 1e-9 {
		t.Fatalf("meanCI = %v ± %v", mean, half)
	}
	if _, half := meanCI([]float64{7}); half != 0 {
		t.Fatalf("one value: ± %v, want 0 (no estimate)", half)
	}
	if tQuantile(100) != tQuantile(30) || tQuantile(1) < 12 {
		t.Fatal("t quantiles")
	}
}

func TestAggregate(t *testing.T) {
	run := func(i int, tput float64, ops, aborts, attempts, merges uint64, wp50 time.Duration) rep {
		return rep{bench.Result{Workload: "collab", Strategy: "optimistic", HotSet: 2, Throughput: tput, Ops: ops,
			Aborts: aborts, Attempts: attempts, Merges: merges, InvariantOK: true,
			Write: bench.Latency{N: 10, P50: wp50, P99: 2 * wp50, Max: 3 * wp50}}, i}
	}
	cells := aggregate([]rep{
		run(0, 100, 100, 10, 200, 50, time.Millisecond),
		run(1, 200, 300, 30, 200, 50, 3*time.Millisecond),
		run(2, 300, 100, 0, 100, 100, 2*time.Millisecond),
	})
	if len(cells) != 1 {
		t.Fatalf("%d cells", len(cells))
	}
	c := cells[0]
	if c.Runs != 3 || c.Throughput != 200 || c.CI <= 0 || c.AbortRate != 0.08 || c.MergesPer != 0.4 {
		t.Fatalf("cell %+v: want 3 runs, 200 ops/s ± >0, abort rate 0.08 (40/500), merges 0.4/op (200/500)", c)
	}
	if c.Write.P50 != 2*time.Millisecond || c.Read.N != 0 {
		t.Fatalf("write p50 %v (want the median run's 2ms), read %+v (want none)", c.Write.P50, c.Read)
	}
}

// TestSummaryLine: the last line counts the calls and says whether every
// check passed; a deadlock where none is promised fails the run.
func TestSummaryLine(t *testing.T) {
	r := &report{Verdicts: []verdict{{Call: callAgree}, {Call: callNoise}, {Call: callNoise}, {Call: callDisagree}},
		Runs: []rep{{bench.Result{InvariantOK: true}, 0}, {bench.Result{InvariantOK: true}, 1}}}
	if got, want := r.summaryLine(), "txkvbench: guide vs measured: 1 agree, 2 within noise, 1 DISAGREE; "+
		"all 2 runs passed their checks"; got != want || !r.allOK() {
		t.Fatalf("summary %q, want %q", got, want)
	}
	r.Runs[1].DeadlockErr = "1 deadlocks under pessimistic"
	if got := r.summaryLine(); !strings.HasSuffix(got, "1 of 2 runs FAILED a check (see the tables)") || r.allOK() {
		t.Fatalf("summary %q after a deadlock where none is promised", got)
	}
}

// TestLinesProgress: off a terminal, progress is plain lines, one per period
// and one at the end, never a carriage return. The clock is fake.
func TestLinesProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &lines{w: &buf, total: 10, every: 10 * time.Second, now: func() time.Time { return now }}
	for range 10 {
		p.start("bank pessimistic hot=10")
		now = now.Add(3 * time.Second)
		p.done()
	}
	p.finish()
	got := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// Lines after cells 4 (12 s) and 8 (24 s), then the final one.
	if len(got) != 3 || !strings.HasPrefix(got[0], "txkvbench: 4/10 cells (40%), 12s elapsed, about 18s left") ||
		got[2] != "txkvbench: 10/10 cells in 30s" || strings.Contains(buf.String(), "\r") {
		t.Fatalf("progress lines:\n%s", &buf)
	}
}

func TestProgressForm(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := newProgress(f, 5, false).(*lines); !ok {
		t.Error("a file is no terminal: want plain lines")
	}
	if _, ok := newProgress(&bytes.Buffer{}, 5, false).(*lines); !ok {
		t.Error("a buffer is no terminal: want plain lines")
	}
	if _, ok := newProgress(f, 5, true).(noProgress); !ok {
		t.Error("-no-progress: want none")
	}
}

func TestSweepTicks(t *testing.T) {
	ticks := sweepTicks{500, 5, 50, 5, 2}.Ticks(3, 600)
	var labels []string
	for _, tk := range ticks {
		labels = append(labels, tk.Label)
	}
	if got := strings.Join(labels, ","); got != "5,50,500" {
		t.Fatalf("tick labels %q, want every swept size in range: 5,50,500", got)
	}
}

func TestChartDetails(t *testing.T) {
	r := &report{Started: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Machine: machine(),
		Settings: map[string]string{"sync": "always", "mem": "false", "runs": "3", "duration": "100ms", "workers": "8"}}
	d := r.details()
	for _, want := range []string{"2026-05-01 12:00 UTC", "sync=always", "3 runs × 100ms per cell", "8 workers", "CPUs"} {
		if !strings.Contains(d, want) {
			t.Errorf("chart details %q lack %q", d, want)
		}
	}
}

// TestTableFlagsDeadlock: a deadlock where the recipe promises none shows in
// the table's check column and fails the report.
func TestTableFlagsDeadlock(t *testing.T) {
	runs := toReps(pair("pessimistic", "optimistic", []float64{100, 100}, []float64{100, 100}))
	runs[0].Deadlocks, runs[0].DeadlockFree = 2, true
	runs[0].DeadlockErr = "2 deadlocks under pessimistic, whose recipe takes its locks in canonical order (guide §4): a bug"
	r := &report{Runs: runs, Cells: aggregate(runs), Settings: map[string]string{"runs": "2"}}
	v, _ := judge(mustSpec(t, "bank"), runs)
	r.Verdicts = []verdict{v}
	var out bytes.Buffer
	r.printWorkload(&out, v)
	if !strings.Contains(out.String(), "FAIL: 2 deadlocks under pessimistic") || r.allOK() {
		t.Fatalf("a broken deadlock promise is not flagged:\n%s", &out)
	}
}

// TestServe runs one short round of -serve and reads the live view while
// it runs: the URL is printed first, and the page and the JSON are served.
func TestServe(t *testing.T) {
	pages := make(chan string, 1)
	onServe = func(url string) {
		resp, err := http.Get(url + "api/snapshot.json")
		if err != nil {
			pages <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		pages <- resp.Status + " " + string(b)
	}
	defer func() { onServe = nil }()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-serve", "localhost:0", "-workload", "medical", "-strategy", "hybrid,pessimistic",
		"-duration", "100ms", "-think", "1ms", "-runs", "1", "-workers", "4", "-mem"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	out := stdout.String()
	if !strings.HasPrefix(out, "txkvbench: watch at http://localhost:") {
		t.Errorf("the URL is not printed first:\n%s", out)
	}
	for _, want := range []string{"round 1: medical · hybrid · hot set", "round 1: medical · pessimistic", "check ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if page := <-pages; !strings.HasPrefix(page, "200 OK {") || !strings.Contains(page, `"locks"`) {
		t.Errorf("the live view answered %.200s", page)
	}
}

// -serve's defaults make the runs watchable, unless the flags say otherwise.
func TestServeDefaults(t *testing.T) {
	f, err := parseFlags([]string{"-serve", ":0"}, io.Discard)
	if err != nil || f.duration != serveDuration || f.think != serveThink || f.contention != "high" || f.runs != 0 {
		t.Errorf("-serve: %+v, %v", f, err)
	}
	f, err = parseFlags([]string{"-serve", ":0", "-duration", "1s", "-runs", "2"}, io.Discard)
	if err != nil || f.duration != time.Second || f.runs != 2 || f.think != serveThink {
		t.Errorf("-serve -duration 1s -runs 2: %+v, %v", f, err)
	}
}
