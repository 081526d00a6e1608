package crash_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/testenv"
)

// The bank: accounts accounts start with startBalance each. A transfer moves a random amount
// between two accounts (0 if the source is short, so no balance goes negative) and, in the
// same transaction, writes xfer/<id> = "from to amount". The checks after a crash:
//
//	acknowledged ⊆ recorded       nothing acknowledged is lost
//	Σ balances = accounts × start  money is conserved
//	balance(a) = start + Σ in(a) − Σ out(a) over the records
//	                               each transfer is all there or not at all (no torn tx)
const (
	accounts     = 10
	startBalance = 1000
)

var bg = context.Background()

// strategies: the child runs one worker per strategy, all at once on one DB.
var strategies = []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive}

func accountKey(i int) []byte { return fmt.Appendf(nil, "acct/%02d", i) }

// childSpec is what the parent tells a child, as JSON in childEnv.
type childSpec struct {
	Path     string
	Cycle    int
	Seed     uint64
	Rounds   int   // open → transfers → Close, this many times (the parent usually kills first)
	PerRound int   // transfers per worker per round
	Ckpt     int64 // Options.CheckpointBytes (0: default)
	Retain   int   // Options.WatchRetainRecords (0: default; -1: none)
	SyncNone bool  // Options.Sync = SyncNone (still durable across a process kill)
	Create   bool  // the file does not exist yet: the child creates and seeds the bank first
}

// childEnv carries the JSON childSpec into a bank child; TestMain dispatches on it.
const childEnv = "TXKV_CRASH_CHILD"

func (s childSpec) options() *txkv.Options {
	o := txkv.DefaultOptions()
	o.CheckpointBytes = s.Ckpt
	o.WatchRetainRecords = s.Retain
	o.LockTimeout = txkv.Forever // deadlocks are detected; no timeouts
	o.Retry = &txkv.RetryPolicy{MaxAttempts: 1000}
	if s.SyncNone {
		o.Sync = txkv.SyncNone
	}
	return o
}

// bankChild is the child process: rounds of concurrent transfers, one worker per strategy,
// printing "ACK <id>" only after Update returned nil. Beside them run readers: a View that
// scans this cycle's transfer records, a DB.Get of each worker's latest transfer (often
// committed but not yet durable), and a Watch consumer; each prints "SAW <id>" for every
// transfer an acknowledged read returned (the View or Get returned nil, the event was
// delivered). A commit becomes visible before it is durable, so these are the reads that
// could report a write a crash then loses — the parent checks they never do. It returns the
// exit code.
func bankChild(raw string) int {
	var s childSpec
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		fmt.Printf("ERR spec: %v\n", err)
		return 2
	}
	var out sync.Mutex // one line per write
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	if s.Create {
		if err := createBank(s.Path); err != nil {
			say("ERR create: %v", err)
			return 2
		}
		say("CREATED")
	}
	n := make([]atomic.Int64, len(strategies)) // transfers each worker has begun
	for round := range s.Rounds {
		db, err := txkv.Open(s.Path, s.options())
		if err != nil {
			say("ERR open in round %d: %v", round, err)
			return 2
		}
		var wg sync.WaitGroup
		var failed sync.Once
		code := 0
		fail := func(format string, args ...any) {
			say("ERR "+format, args...)
			failed.Do(func() { code = 2 })
		}
		readers, stopReaders := context.WithCancel(bg)
		var rwg sync.WaitGroup
		startReaders(db, readers, &rwg, s.Cycle, n, say, fail)
		for w, strat := range strategies {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(s.Seed, uint64(s.Cycle)<<32|uint64(round)<<8|uint64(w)))
				opts := &txkv.TxOptions{Strategy: strat}
				for range s.PerRound {
					id := transferID(s.Cycle, w, int(n[w].Load()))
					n[w].Add(1)
					if err := transfer(db, opts, rng, id); err != nil {
						fail("transfer %s (%v): %v", id, strat, err)
						return
					}
					say("ACK %s", id)
				}
			})
		}
		wg.Wait()
		stopReaders()
		rwg.Wait()
		if err := db.Close(); err != nil {
			say("ERR close in round %d: %v", round, err)
			return 2
		}
		if code != 0 {
			return code
		}
	}
	say("DONE")
	return 0
}

// transferID names worker w's n-th transfer of a cycle (over all its rounds).
func transferID(cycle, w, n int) string { return fmt.Sprintf("c%05d-w%d-%05d", cycle, w, n) }

// startReaders runs the child's readers until ctx ends (see bankChild).
func startReaders(db *txkv.DB, ctx context.Context, wg *sync.WaitGroup, cycle int, n []atomic.Int64,
	say func(string, ...any), fail func(string, ...any)) {
	prefix := fmt.Appendf(nil, "xfer/c%05d-", cycle)
	wg.Go(func() { // View scans
		for ctx.Err() == nil {
			var ids []string
			err := db.View(bg, func(tx *txkv.Tx) error {
				ids = ids[:0]
				return tx.Scan(prefix, prefixEnd(prefix), func(k, _ []byte) error {
					ids = append(ids, strings.TrimPrefix(string(k), "xfer/"))
					return nil
				})
			})
			if readerFailed(err, fail, "View") {
				return
			}
			for _, id := range ids {
				say("SAW %s", id)
			}
		}
	})
	wg.Go(func() { // point reads of each worker's newest transfer
		for ctx.Err() == nil {
			for w := range n {
				id := transferID(cycle, w, int(n[w].Load())-1)
				_, err := db.Get(bg, []byte("xfer/"+id))
				if errors.Is(err, txkv.ErrNotFound) {
					continue
				}
				if readerFailed(err, fail, "Get") {
					return
				}
				say("SAW %s", id)
			}
		}
	})
	wg.Go(func() { // a change stream
		for ev, err := range db.Watch(ctx, prefix, 0) {
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, txkv.ErrClosed) {
					fail("Watch: %v", err)
				}
				return
			}
			say("SAW %s", strings.TrimPrefix(string(ev.Key), "xfer/"))
		}
	})
}

// readerFailed reports whether a reader must stop: the DB closed (the round ends) or an
// error, which fails the child.
func readerFailed(err error, fail func(string, ...any), what string) bool {
	switch {
	case err == nil:
		return false
	case !errors.Is(err, txkv.ErrClosed):
		fail("reader %s: %v", what, err)
	}
	return true
}

// prefixEnd is the smallest key above every key with prefix p (p's last byte is not 0xff).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}

func transfer(db *txkv.DB, opts *txkv.TxOptions, rng *rand.Rand, id string) error {
	from := rng.IntN(accounts)
	to := (from + 1 + rng.IntN(accounts-1)) % accounts
	amount := 1 + rng.IntN(100)
	return db.Update(bg, opts, func(tx *txkv.Tx) error {
		fb, err := balance(tx, from)
		if err != nil {
			return err
		}
		tb, err := balance(tx, to)
		if err != nil {
			return err
		}
		moved := amount
		if fb < moved {
			moved = 0
		}
		if err := tx.Put(accountKey(from), strconv.AppendInt(nil, int64(fb-moved), 10)); err != nil {
			return err
		}
		if err := tx.Put(accountKey(to), strconv.AppendInt(nil, int64(tb+moved), 10)); err != nil {
			return err
		}
		return tx.Put([]byte("xfer/"+id), fmt.Appendf(nil, "%d %d %d", from, to, moved))
	})
}

func balance(tx *txkv.Tx, i int) (int, error) {
	v, err := tx.Get(accountKey(i))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(v))
}

// seedBank creates the bank file.
func seedBank(t testing.TB, path string) {
	t.Helper()
	if err := createBank(path); err != nil {
		t.Fatal(err)
	}
}

// createBank creates the bank file: every account at startBalance, durably.
func createBank(path string) error {
	db, err := txkv.Open(path, nil)
	if err != nil {
		return err
	}
	err = db.Update(bg, nil, func(tx *txkv.Tx) error {
		for i := range accounts {
			if err := tx.Put(accountKey(i), []byte(strconv.Itoa(startBalance))); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// childResult is what a parent saw of one child.
type childResult struct {
	acks int
	saws int // acknowledged reads of a transfer

	killed   bool // the child died by SIGKILL (ours or its own crash point)
	done     bool // the child finished every round ("DONE")
	created  bool // the child created the bank ("CREATED")
	errLines []string
	stderr   string
}

// runChild starts a bank child with spec and extra environment, records every ACK and SAW it
// prints in acked (an acknowledged read is a promise too: what it returned must survive), and SIGKILLs it after killAfter ACKs (0: never; a crash point kills it, or it
// finishes). A child that outlives limit is killed and reported as stalled.
func runChild(t *testing.T, spec childSpec, env []string, killAfter int, acked map[string]bool, limit time.Duration) childResult {
	t.Helper()
	return runChildWatched(t, spec, env, killAfter, acked, limit, nil)
}

// stallDumpWait is how long a stalled child has to print its goroutines before SIGKILL.
const stallDumpWait = 2 * time.Second

// runChildWatched is runChild with onStall, which the watchdog calls after it killed a child
// that outlived limit: a child blocked in a FUSE request is not released by SIGKILL, and the
// power-loss tests abort the FUSE connection there.
func runChildWatched(t *testing.T, spec childSpec, env []string, killAfter int, acked map[string]bool,
	limit time.Duration, onStall func()) childResult {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+string(raw)), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stalled := false
	var stallMu sync.Mutex
	stall := time.AfterFunc(limit, func() { // a safety net, not synchronization
		stallMu.Lock()
		stalled = true
		stallMu.Unlock()
		// SIGQUIT first: the Go runtime writes every goroutine's stack to stderr, which the
		// report below shows — a stall is then explained, not only detected. SIGKILL after,
		// for a child the runtime cannot end.
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(stallDumpWait)
		_ = cmd.Process.Kill()
		if onStall != nil {
			onStall()
		}
	})
	defer stall.Stop()

	var res childResult
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "SAW "):
			acked[strings.TrimPrefix(line, "SAW ")] = true
			res.saws++
		case strings.HasPrefix(line, "ACK "):
			acked[strings.TrimPrefix(line, "ACK ")] = true
			res.acks++
			if res.acks == killAfter {
				if err := cmd.Process.Kill(); err != nil { // SIGKILL
					t.Fatalf("kill: %v", err)
				}
			}
		case line == "DONE":
			res.done = true
		case line == "CREATED":
			res.created = true
		case strings.HasPrefix(line, "ERR "):
			res.errLines = append(res.errLines, line)
		}
	}
	waitErr := cmd.Wait()
	res.stderr = stderr.String()
	stallMu.Lock()
	defer stallMu.Unlock()
	if stalled {
		t.Fatalf("cycle %d: the child made no progress for %v and was killed\nstderr:\n%s", spec.Cycle, limit, res.stderr)
	}
	if len(res.errLines) > 0 {
		t.Fatalf("cycle %d: the child failed: %s\nstderr:\n%s", spec.Cycle, strings.Join(res.errLines, "\n"), res.stderr)
	}
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			res.killed = true
		} else {
			t.Fatalf("cycle %d: child ended with %v\nstderr:\n%s", spec.Cycle, waitErr, res.stderr)
		}
	} else if waitErr != nil {
		t.Fatalf("cycle %d: child: %v", spec.Cycle, waitErr)
	}
	return res
}

// recovered is one verified recovery of the bank file.
type recovered struct {
	openTime time.Duration // txkv.Open: bbolt open, format check, log replay
	hash     string        // of every key, value and version
	records  int           // transfer records
	size     int64         // file size before Open
}

// verifyBank opens the file (crash recovery), checks the bank's invariants and that every
// acknowledged transfer is there, verifies every checksum (DB.Verify), hashes the whole
// state, closes it, and runs bbolt's own consistency check on the file.
func verifyBank(t *testing.T, path string, acked map[string]bool) recovered {
	t.Helper()
	var r recovered
	if fi, err := os.Stat(path); err == nil {
		r.size = fi.Size()
	}
	start := time.Now()
	db, err := txkv.Open(path, nil)
	r.openTime = time.Since(start)
	if err != nil {
		t.Fatalf("recovery: Open: %v", err)
	}
	kvs, err := readAll(db)
	if err == nil {
		err = db.Verify() // every checksum in the file, and bbolt's structure
	}
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("Close after recovery: %w", cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.records = checkBank(t, kvs, acked)
	r.hash = hashState(kvs)
	boltCheck(t, path)
	return r
}

// reopenHash opens the file again and returns the state hash: recovering twice must give
// the same state as recovering once.
func reopenHash(t *testing.T, path string) string {
	t.Helper()
	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatalf("second recovery: Open: %v", err)
	}
	kvs, err := readAll(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("second recovery: %v", err)
	}
	return hashState(kvs)
}

// readAll reads every key with its value and version in one read-only snapshot.
func readAll(db *txkv.DB) ([]txkv.KV, error) {
	var kvs []txkv.KV
	err := db.View(bg, func(tx *txkv.Tx) error {
		kvs = kvs[:0]
		if err := tx.Scan(nil, nil, func(k, v []byte) error {
			kvs = append(kvs, txkv.KV{Key: bytes.Clone(k), Value: bytes.Clone(v)})
			return nil
		}); err != nil {
			return err
		}
		for i := range kvs {
			v, ver, err := tx.GetVersioned(kvs[i].Key)
			if err != nil {
				return fmt.Errorf("GetVersioned(%q) of a scanned key: %w", kvs[i].Key, err)
			}
			if !bytes.Equal(v, kvs[i].Value) {
				return fmt.Errorf("key %q: Scan saw %q, GetVersioned %q in one snapshot", kvs[i].Key, kvs[i].Value, v)
			}
			kvs[i].Version = ver
		}
		return nil
	})
	return kvs, err
}

// checkBank checks the invariants and returns the number of transfer records.
func checkBank(t *testing.T, kvs []txkv.KV, acked map[string]bool) int {
	t.Helper()
	balances := map[string]int{}
	expect := map[string]int{}
	records := map[string]bool{}
	for _, kv := range kvs {
		k := string(kv.Key)
		switch {
		case strings.HasPrefix(k, "acct/"):
			n, err := strconv.Atoi(string(kv.Value))
			if err != nil {
				t.Fatalf("account %s = %q: %v", k, kv.Value, err)
			}
			balances[k] = n
		case strings.HasPrefix(k, "xfer/"):
			records[strings.TrimPrefix(k, "xfer/")] = true
			var from, to, amount int
			if _, err := fmt.Sscanf(string(kv.Value), "%d %d %d", &from, &to, &amount); err != nil {
				t.Fatalf("transfer record %s = %q: %v", k, kv.Value, err)
			}
			expect[string(accountKey(from))] -= amount
			expect[string(accountKey(to))] += amount
		default:
			t.Fatalf("unexpected key %q after recovery", k)
		}
	}
	if len(balances) != accounts {
		t.Fatalf("%d accounts after recovery, want %d", len(balances), accounts)
	}
	sum := 0
	for k, b := range balances {
		sum += b
		if b < 0 {
			t.Errorf("account %s is negative: %d", k, b)
		}
		if want := startBalance + expect[k]; b != want {
			t.Errorf("account %s = %d, but start + recorded transfers = %d: a transfer was torn", k, b, want)
		}
	}
	if sum != accounts*startBalance {
		t.Errorf("total %d, want %d: money was created or destroyed", sum, accounts*startBalance)
	}
	var missing []string
	for id := range acked {
		if !records[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%d of %d acknowledged transfers lost, first: %v", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	if t.Failed() {
		t.FailNow()
	}
	return len(records)
}

// hashState hashes keys, values and versions, length-prefixed, in key order.
func hashState(kvs []txkv.KV) string {
	h := sha256.New()
	var buf []byte
	for _, kv := range kvs {
		buf = binary.AppendUvarint(buf[:0], uint64(len(kv.Key)))
		buf = append(buf, kv.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(kv.Value)))
		buf = append(buf, kv.Value...)
		buf = binary.BigEndian.AppendUint64(buf, kv.Version)
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// boltCheck runs bbolt's own consistency check (page reachability, no double use, freelist,
// key order) on the closed file, read-only.
func boltCheck(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt open for check: %v", err)
	}
	defer db.Close()
	var errs []error
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil || len(errs) > 0 {
		t.Fatalf("bbolt check of %s: %v %v", path, err, errors.Join(errs...))
	}
}

// envInt reads a positive integer knob.
func envInt(t testing.TB, name string, def int) int { return testenv.Int(t, name, def) }

// testSeed returns $TXKV_SEED or a fresh seed, and logs how to replay it.
func testSeed(t testing.TB) uint64 { return testenv.Seed(t, "TXKV_SEED") }

// durations summarizes a distribution: p50, p90, p99, max.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return fmt.Sprintf("n=%d p50=%v p90=%v p99=%v max=%v", len(s), q(0.5).Round(time.Microsecond),
		q(0.9).Round(time.Microsecond), q(0.99).Round(time.Microsecond), s[len(s)-1].Round(time.Microsecond))
}

// recoveryLimit is the design's bound on recovery time for a file of at most maxRecoverySize.
const (
	recoveryLimit   = time.Second
	maxRecoverySize = 64 << 20
)

func checkRecoveryTime(t *testing.T, r recovered) {
	t.Helper()
	if r.size <= maxRecoverySize && r.openTime > recoveryLimit {
		t.Errorf("recovery of a %d-byte file took %v, more than %v", r.size, r.openTime, recoveryLimit)
	}
}
