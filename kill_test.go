package txkv_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// The kill -9 test. TestKill9 (the parent) re-executes this test binary as a
// child running only TestKill9Child, which opens a file DB with SyncAlways
// and runs concurrent durable bank transfers between killAccounts accounts.
// Each transfer moves money and Puts a unique transfer record in the same
// transaction, and the child prints "ACK <id>" only after Update returned
// nil. The parent reads the ACKs, sends SIGKILL after a random number of
// them (1..200), reads what was already printed, reopens the file (crash
// recovery: log replay) and checks:
//
//   - every ACKed transfer's record is present (no acknowledged commit lost);
//   - the balances total killAccounts × killStart (money is conserved);
//   - no balance is negative;
//   - each balance equals its start plus the recorded transfers in and out
//     (a transfer is all there or not at all: atomicity).
//
// The same file carries over from cycle to cycle, so recovery also runs on
// files that were recovered before, and on files killed mid-checkpoint
// (some cycles checkpoint after nearly every commit).
//
//	TXKV_KILL_CYCLES=200 go test -run TestKill9 -v .    more cycles (default 20)
//	TXKV_SEED=1234 go test -run TestKill9 -v .          replay the parent's choices
//
// Skipped under -short.

const (
	killChildEnv  = "TXKV_KILL9_CHILD" // the DB path; set only in the child
	killCycleEnv  = "TXKV_KILL9_CYCLE"
	killSeedEnv   = "TXKV_KILL9_SEED"
	killStratEnv  = "TXKV_KILL9_STRATEGY"
	killCkptEnv   = "TXKV_KILL9_CHECKPOINT_BYTES"
	killAccounts  = 10
	killStart     = 1000
	killWorkers   = 4
	killMaxPerRun = 20000 // a child that is never killed stops here (and fails the cycle)
)

var killStrategies = []txkv.Strategy{txkv.Optimistic, txkv.Pessimistic, txkv.Hybrid}

func accountKey(i int) []byte { return []byte(fmt.Sprintf("acct/%02d", i)) }

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 cycles: skipped under -short")
	}
	if os.Getenv(killChildEnv) != "" {
		t.Skip("this is the child")
	}
	cycles, err := strconv.Atoi(envOr("TXKV_KILL_CYCLES", "20"))
	if err != nil || cycles < 1 {
		t.Fatalf("TXKV_KILL_CYCLES=%q: want a positive number", os.Getenv("TXKV_KILL_CYCLES"))
	}
	seed, err := strconv.ParseUint(envOr("TXKV_SEED", strconv.FormatUint(uint64(time.Now().UnixNano()), 10)), 10, 64)
	if err != nil {
		t.Fatalf("TXKV_SEED: %v", err)
	}
	t.Logf("seed %d, %d cycles (replay: TXKV_SEED=%d go test -run 'TestKill9$' .)", seed, cycles, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))

	path := filepath.Join(t.TempDir(), "bank.db")
	seedBank(t, path)
	acked := map[string]bool{}
	for c := range cycles {
		killAfter := 1 + rng.IntN(200)
		strategy := killStrategies[rng.IntN(len(killStrategies))]
		ckpt := []int64{0, 1, 4096}[rng.IntN(3)]
		n := runKilledChild(t, path, c, seed, killAfter, strategy, ckpt, acked)
		total := verifyBank(t, path, acked)
		t.Logf("cycle %d: %v, CheckpointBytes %d: killed after %d ACKs (%d read); %d transfers on file",
			c, strategy, ckpt, killAfter, n, total)
	}
}

func seedBank(t *testing.T, path string) {
	t.Helper()
	db := openAt(t, path, nil)
	err := db.Update(bg, nil, func(tx *txkv.Tx) error {
		for i := range killAccounts {
			if err := tx.Put(accountKey(i), []byte(strconv.Itoa(killStart))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// runKilledChild runs one child, kills it after killAfter ACKs, and adds
// every ACK it printed to acked. It returns the number of ACKs read.
func runKilledChild(t *testing.T, path string, cycle int, seed uint64, killAfter int,
	strategy txkv.Strategy, ckpt int64, acked map[string]bool) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		killChildEnv+"="+path,
		killCycleEnv+"="+strconv.Itoa(cycle),
		killSeedEnv+"="+strconv.FormatUint(seed, 10),
		killStratEnv+"="+strconv.Itoa(int(strategy)),
		killCkptEnv+"="+strconv.FormatInt(ckpt, 10),
	)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A child that makes no progress is killed too, and the cycle fails below.
	stall := time.AfterFunc(3*waitLimit, func() { _ = cmd.Process.Kill() })
	defer stall.Stop()

	acks, killed := 0, false
	var other []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "ACK ")
		if !ok {
			if strings.HasPrefix(sc.Text(), "ERR ") {
				t.Errorf("cycle %d: child: %s", cycle, sc.Text())
			}
			other = append(other, sc.Text())
			continue
		}
		acked[id] = true
		acks++
		if acks == killAfter {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL
				t.Fatalf("kill: %v", err)
			}
			killed = true
		}
	}
	waitErr := cmd.Wait()
	if !killed {
		t.Fatalf("cycle %d: the child ended after %d of %d ACKs before being killed: %v\nstdout:\n%s\nstderr:\n%s",
			cycle, acks, killAfter, waitErr, strings.Join(other, "\n"), stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(waitErr, &exit) || exit.ExitCode() != -1 {
		t.Fatalf("cycle %d: child ended with %v, want killed by a signal\nstderr:\n%s", cycle, waitErr, stderr.String())
	}
	return acks
}

// verifyBank reopens the file after a kill and checks the invariants. It
// returns the number of transfer records.
func verifyBank(t *testing.T, path string, acked map[string]bool) int {
	t.Helper()
	db := openAt(t, path, nil)
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close after recovery: %v", err)
		}
	}()
	balances := map[string]int{}
	expect := map[string]int{}
	records := map[string]bool{}
	err := db.View(bg, func(tx *txkv.Tx) error {
		err := tx.Scan([]byte("acct/"), []byte("acct0"), func(k, v []byte) error {
			n, err := strconv.Atoi(string(v))
			balances[string(k)] = n
			return err
		})
		if err != nil {
			return err
		}
		return tx.Scan([]byte("xfer/"), []byte("xfer0"), func(k, v []byte) error {
			records[strings.TrimPrefix(string(k), "xfer/")] = true
			var from, to, amount int
			if _, err := fmt.Sscanf(string(v), "%d %d %d", &from, &to, &amount); err != nil {
				return fmt.Errorf("transfer record %s=%q: %w", k, v, err)
			}
			expect[string(accountKey(from))] -= amount
			expect[string(accountKey(to))] += amount
			return nil
		})
	})
	if err != nil {
		t.Fatalf("reading the recovered bank: %v", err)
	}
	if len(balances) != killAccounts {
		t.Fatalf("%d accounts after recovery, want %d: %v", len(balances), killAccounts, balances)
	}
	sum := 0
	for k, b := range balances {
		sum += b
		if b < 0 {
			t.Errorf("account %s is negative: %d", k, b)
		}
		if want := killStart + expect[k]; b != want {
			t.Errorf("account %s = %d, but start + recorded transfers = %d: a transfer was torn", k, b, want)
		}
	}
	if sum != killAccounts*killStart {
		t.Errorf("total %d, want %d: money was created or destroyed", sum, killAccounts*killStart)
	}
	missing := 0
	for id := range acked {
		if !records[id] {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged transfer %s is missing after recovery", id)
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged transfers lost", missing, len(acked))
	}
	return len(records)
}

// TestKill9Child is the child of TestKill9; it does nothing unless run by it.
// It never returns normally: the parent kills it.
func TestKill9Child(t *testing.T) {
	path := os.Getenv(killChildEnv)
	if path == "" {
		t.Skip("run by TestKill9 as a child process")
	}
	cycle, _ := strconv.Atoi(os.Getenv(killCycleEnv))
	seed, _ := strconv.ParseUint(os.Getenv(killSeedEnv), 10, 64)
	strategy, _ := strconv.Atoi(os.Getenv(killStratEnv))
	ckpt, _ := strconv.ParseInt(os.Getenv(killCkptEnv), 10, 64)
	db, err := txkv.Open(path, &txkv.Options{
		Sync:            txkv.SyncAlways,
		Strategy:        txkv.Strategy(strategy),
		CheckpointBytes: ckpt,
		LockTimeout:     -1, // deadlocks are detected; no timeouts
		Retry:           &txkv.RetryPolicy{MaxAttempts: 1000},
	})
	if err != nil {
		t.Fatalf("child Open: %v", err)
	}
	var out sync.Mutex // one ACK line per write
	var wg sync.WaitGroup
	for w := range killWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(cycle*killWorkers+w)))
			for n := range killMaxPerRun {
				id := fmt.Sprintf("c%03d-w%d-%06d", cycle, w, n)
				if err := transfer(db, rng, id); err != nil {
					// Tell the parent (it may be about to kill us) and stop.
					out.Lock()
					fmt.Fprintf(os.Stdout, "ERR transfer %s: %v\n", id, err)
					os.Exit(2)
				}
				out.Lock()
				_, err := fmt.Fprintf(os.Stdout, "ACK %s\n", id)
				out.Unlock()
				if err != nil {
					return // the parent is gone
				}
			}
		}()
	}
	wg.Wait()
	_ = db.Close()
}

// transfer moves a random amount between two random accounts (never below
// zero: an insufficient balance moves 0) and records it under xfer/<id>.
func transfer(db *txkv.DB, rng *rand.Rand, id string) error {
	from := rng.IntN(killAccounts)
	to := (from + 1 + rng.IntN(killAccounts-1)) % killAccounts
	amount := 1 + rng.IntN(100)
	return db.Update(bg, nil, func(tx *txkv.Tx) error {
		fb, err := readBalance(tx, from)
		if err != nil {
			return err
		}
		tb, err := readBalance(tx, to)
		if err != nil {
			return err
		}
		moved := amount
		if fb < moved {
			moved = 0
		}
		if err := tx.Put(accountKey(from), []byte(strconv.Itoa(fb-moved))); err != nil {
			return err
		}
		if err := tx.Put(accountKey(to), []byte(strconv.Itoa(tb+moved))); err != nil {
			return err
		}
		return tx.Put([]byte("xfer/"+id), fmt.Appendf(nil, "%d %d %d", from, to, moved))
	})
}

func readBalance(tx *txkv.Tx, i int) (int, error) {
	v, err := tx.Get(accountKey(i))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(v))
}
