package crash_test

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
)

// TestKill9Cycles: a child runs concurrent durable transfers, one worker per strategy, in
// rounds of Open → transfers → Close; the parent SIGKILLs it after a random number of
// acknowledgements (1..40, so kills land mid-commit, mid-checkpoint, in Close and in Open),
// then recovers the file and checks: no acknowledged transfer lost, no torn transfer, money
// conserved, bbolt's consistency check clean, recovery under a second, and a second recovery
// yielding the same state hash. One file carries over all cycles, so recovery also runs on
// files recovered before.
//
//	TXKV_KILL_CYCLES=2000 go test -run TestKill9Cycles ./reliability/crash   (default 200)
//	TXKV_SEED=<seed> ...                                                     replay the choices
func TestKill9Cycles(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 cycles: skipped under -short")
	}
	cycles := envInt(t, "TXKV_KILL_CYCLES", 200)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))
	path := filepath.Join(t.TempDir(), "bank.db")
	seedBank(t, path)
	acked := map[string]bool{}
	var opens []time.Duration
	var last recovered
	start := time.Now()
	for c := range cycles {
		spec := childSpec{
			Path: path, Cycle: c, Seed: seed,
			Rounds:   1000, // never reached: the parent kills first
			PerRound: 1 + rng.IntN(12),
			Ckpt:     []int64{0, 1, 4096}[rng.IntN(3)],
			Retain:   []int{0, -1, 5}[rng.IntN(3)],
			SyncNone: rng.IntN(4) == 0,
		}
		killAfter := 1 + rng.IntN(40)
		res := runChild(t, spec, nil, killAfter, acked, waitLimit)
		if !res.killed || res.done {
			t.Fatalf("cycle %d: the child was not killed (%d ACKs, done %v)", c, res.acks, res.done)
		}
		last = verifyBank(t, path, acked)
		checkRecoveryTime(t, last)
		opens = append(opens, last.openTime)
		if again := reopenHash(t, path); again != last.hash {
			t.Fatalf("cycle %d: state hash %s after the first recovery, %s after the second", c, last.hash, again)
		}
		if testing.Verbose() && (c < 5 || c%50 == 0) {
			t.Logf("cycle %d: %+v, killed after %d ACKs; %d transfers on file, recovery %v",
				c, spec, res.acks, last.records, last.openTime)
		}
	}
	t.Logf("%d cycles in %v: %d acknowledged transfers, %d on file, file %d bytes; recovery (Open) %s",
		cycles, time.Since(start).Round(time.Millisecond), len(acked), last.records, last.size, durations(opens))
}

// waitLimit bounds a child's run: far above what a healthy one needs, so reaching it means a
// hang.
const waitLimit = 60 * time.Second
