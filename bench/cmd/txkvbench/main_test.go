package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestRunWritesReport runs a tiny matrix and checks the table, the JSON and
// the charts it promises.
func TestRunWritesReport(t *testing.T) {
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-workload", "bank,collab", "-strategy", "pessimistic,optimistic", "-contention", "high,20",
		"-duration", "30ms", "-workers", "4", "-mem", "-no-progress", "-out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	for _, want := range []string{"== bank: Bank transfer ==", "guide: pessimistic", "measured winner:", "Summary"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &stdout)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 2*2*2 || len(rep.Verdicts) != 2 {
		t.Fatalf("%d results, %d verdicts; want 8 and 2", len(rep.Results), len(rep.Verdicts))
	}
	for _, r := range rep.Results {
		if !r.InvariantOK || r.Ops == 0 {
			t.Errorf("%s/%s hot=%d: ok=%v ops=%d", r.Workload, r.Strategy, r.HotSet, r.InvariantOK, r.Ops)
		}
	}
	for _, name := range []string{"bank.png", "collab.png"} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() < 1000 {
			t.Errorf("chart %s: %v", name, err)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-workload", "nope"}, {"-strategy", "psychic"}, {"-contention", "1"}, {"-sync", "sometimes"}, {"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(append(args, "-no-progress", "-out", t.TempDir()), &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestJudge(t *testing.T) {
	spec := mustSpec(t, "bank")
	rs := []resultLite{
		{"pessimistic", 10, 100, true}, {"optimistic", 10, 200, true},
		{"pessimistic", 100, 300, true}, {"optimistic", 100, 250, true},
	}
	v, ok := judge(spec, toResults(rs))
	if !ok || v.Winner != "optimistic" || v.LevelWinners[10] != "optimistic" || v.LevelWinners[100] != "pessimistic" || v.Agree {
		t.Fatalf("judge = %+v", v)
	}
	// A strategy that broke an invariant cannot win.
	rs[1].ok = false
	if v, _ := judge(spec, toResults(rs)); v.Winner != "pessimistic" || !v.Agree {
		t.Fatalf("judge with a failed invariant = %+v", v)
	}
}
