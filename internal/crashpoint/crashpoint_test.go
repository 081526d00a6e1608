package crashpoint

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// childEnv marks the re-executed test binary as the child of TestKillsAtTheNthHit.
const childEnv = "TXKV_CRASHPOINT_TEST_CHILD"

// TestKillsAtTheNthHit re-executes this test binary with a crash point armed and checks that
// the child dies by SIGKILL at exactly hit skip+1 of that point, having passed every earlier
// hit and every hit of other points.
func TestKillsAtTheNthHit(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("this is the child")
	}
	for _, skip := range []int{0, 1, 7} {
		t.Run(fmt.Sprint("skip=", skip), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"=1", EnvName+"="+WALMidReplay,
				fmt.Sprintf("%s=%d", EnvSkip, skip))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child: %v, want killed\nstdout:\n%s", err, stdout.String())
			}
			ws, ok := exit.Sys().(syscall.WaitStatus)
			if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child ended with %v, want SIGKILL\nstderr:\n%s", err, stderr.String())
			}
			var passed int
			sc := bufio.NewScanner(&stdout)
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "passed ") {
					passed++
				}
			}
			if passed != skip {
				t.Fatalf("child passed %d hits before dying, want %d\nstdout:\n%s", passed, skip, stdout.String())
			}
			want := fmt.Sprintf("txkv crashpoint: %s hit %d", WALMidReplay, skip+1)
			if !strings.Contains(stderr.String(), want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), want)
			}
		})
	}
}

// TestChild is the child of TestKillsAtTheNthHit: it hits other points freely and the armed
// point until it dies, printing a line after each hit of the armed point that returned.
func TestChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("run by TestKillsAtTheNthHit")
	}
	if !Armed() {
		t.Fatal("child not armed")
	}
	for i := range 100 {
		Hit(WALBeforeCommit)
		Hit(WALMidReplay)
		fmt.Printf("passed %d\n", i+1)
	}
	t.Fatal("the armed point never killed the process")
}

// TestDisarmedByDefault: without the environment variable nothing is armed and every point
// returns.
func TestDisarmedByDefault(t *testing.T) {
	if os.Getenv(EnvName) != "" {
		t.Skip("run with a crash point armed")
	}
	if Armed() {
		t.Fatal("armed without " + EnvName)
	}
	for _, name := range All {
		Hit(name)
	}
}

// TestNamesUnique: two points with one name could not be told apart.
func TestNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range All {
		if seen[name] || name == "" {
			t.Fatalf("duplicate or empty crash point name %q", name)
		}
		seen[name] = true
	}
	if len(All) < 8 {
		t.Fatalf("%d crash points, the reliability suite needs at least 8", len(All))
	}
}

// BenchmarkHitDisarmed is the production cost of a crash point: one atomic load and a branch.
func BenchmarkHitDisarmed(b *testing.B) {
	if Armed() {
		b.Skip("armed")
	}
	for b.Loop() {
		Hit(WALBeforeCommit)
	}
}
