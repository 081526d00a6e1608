package crash_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv/internal/crashpoint"
)

// pointPlan says how to drive one crash point: how many of its hits a child lets pass
// (uniform in [0, skipMax)), which checkpoint and log-retention settings make it hit often,
// and whether the file first needs un-checkpointed log records (recovery points).
type pointPlan struct {
	name    string
	skipMax int
	ckpt    []int64
	retain  []int
	prep    bool // a killed child first leaves log records for the next Open to replay
}

var pointPlans = []pointPlan{
	{name: crashpoint.TxnBeforeAppend, skipMax: 60},
	{name: crashpoint.WALBeforeCommit, skipMax: 20},
	{name: crashpoint.WALAfterCommit, skipMax: 20},
	{name: crashpoint.TxnAfterAppend, skipMax: 60},
	{name: crashpoint.TxnMidInstall, skipMax: 60},
	{name: crashpoint.TxnBeforeDurable, skipMax: 60},
	{name: crashpoint.WALMidCheckpoint, skipMax: 6, ckpt: []int64{1, 4096}},
	{name: crashpoint.WALMidTruncate, skipMax: 20, ckpt: []int64{1, 4096}, retain: []int{-1, 5}},
	{name: crashpoint.WALMidReplay, prep: true},
	{name: crashpoint.TxnCloseAfterCheckpoint, skipMax: 5},
}

// TestCrashPoints: for each named crash point, children are started with
// TXKV_CRASHPOINT=<point> and a random TXKV_CRASHPOINT_SKIP, so each dies by its own SIGKILL
// at a different hit of that point; after each death the file must satisfy the bank's
// invariants (nothing acknowledged lost, nothing torn, money conserved, bbolt check clean,
// recovery under a second), and recovering it twice must give the same state hash.
//
//	TXKV_CRASH_REPEATS=100 go test -run TestCrashPoints ./reliability/crash   (default 25 per point)
func TestCrashPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("crash points: skipped under -short")
	}
	if len(pointPlans) != len(crashpoint.All) {
		t.Fatalf("%d plans for %d crash points: every point needs a plan", len(pointPlans), len(crashpoint.All))
	}
	repeats := envInt(t, "TXKV_CRASH_REPEATS", 25)
	seed := testSeed(t)
	for i, plan := range pointPlans {
		t.Run(plan.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			path := filepath.Join(t.TempDir(), "bank.db")
			seedBank(t, path)
			acked := map[string]bool{}
			var opens []time.Duration
			for c := range repeats {
				opens = append(opens, crashAt(t, plan, rng, path, c, seed, acked).openTime)
			}
			t.Logf("%d crashes at %s: %d acknowledged transfers kept; recovery (Open) %s",
				repeats, plan.name, len(acked), durations(opens))
		})
	}
}

// crashAt runs one child that dies at plan's point and verifies the file it leaves.
func crashAt(t *testing.T, plan pointPlan, rng *rand.Rand, path string, c int, seed uint64, acked map[string]bool) recovered {
	t.Helper()
	spec := childSpec{Path: path, Cycle: 2 * c, Seed: seed, Rounds: 50, PerRound: 5}
	if plan.ckpt != nil {
		spec.Ckpt = plan.ckpt[rng.IntN(len(plan.ckpt))]
	}
	if plan.retain != nil {
		spec.Retain = plan.retain[rng.IntN(len(plan.retain))]
	}
	skipMax := plan.skipMax
	if plan.prep {
		// Leave un-checkpointed records: a child with the default (large) CheckpointBytes,
		// killed inside its first round, before any Close checkpoints.
		prep := childSpec{Path: path, Cycle: 2*c + 1, Seed: seed, Rounds: 1, PerRound: 100}
		killAfter := 5 + rng.IntN(26)
		if res := runChild(t, prep, nil, killAfter, acked, waitLimit); !res.killed {
			t.Fatalf("cycle %d: the preparing child was not killed", c)
		}
		skipMax = killAfter // the next Open replays at least killAfter records
	}
	skip := rng.IntN(skipMax)
	env := []string{crashpoint.EnvName + "=" + plan.name, fmt.Sprintf("%s=%d", crashpoint.EnvSkip, skip)}
	res := runChild(t, spec, env, 0, acked, waitLimit)
	if !res.killed || res.done || !strings.Contains(res.stderr, "txkv crashpoint: "+plan.name+" hit ") {
		t.Fatalf("cycle %d: the child did not die at %s (skip %d; %d ACKs, done %v)\nstderr:\n%s",
			c, plan.name, skip, res.acks, res.done, res.stderr)
	}
	r := verifyBank(t, path, acked)
	checkRecoveryTime(t, r)
	if again := reopenHash(t, path); again != r.hash {
		t.Fatalf("cycle %d (%s, skip %d): state hash %s after the first recovery, %s after the second",
			c, plan.name, skip, r.hash, again)
	}
	return r
}
