package txkv_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Update's contract: retry retryable errors (conflicts, deadlocks) per the
// retry policy, roll back on any error and on panic (re-panicking), never
// retry other errors.

// interferer commits a write to key each time it is poked, so a test can
// make a transaction conflict at a chosen moment without sleeping.
type interferer struct {
	poke chan string
	done chan error
	wg   sync.WaitGroup
}

func newInterferer(t *testing.T, db *txkv.DB, key string) *interferer {
	in := &interferer{poke: make(chan string), done: make(chan error)}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		for v := range in.poke {
			in.done <- db.Put(bg, []byte(key), []byte(v))
		}
	}()
	t.Cleanup(func() { close(in.poke); in.wg.Wait() })
	return in
}

// write makes the interferer commit value and waits for it.
func (in *interferer) write(t *testing.T, value string) error {
	t.Helper()
	in.poke <- value
	return recv(t, in.done, "the interfering write")
}

func TestUpdateRetriesOnConflict(t *testing.T) {
	for _, m := range []mode{optimisticSerializable, optimisticSnapshot, hybridSerializable, hybridSnapshot} {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			mustPut(t, db, "k", "0")
			in := newInterferer(t, db, "k")
			before := db.Stats()
			attempts := 0
			err := db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error {
				attempts++
				v, err := tx.Get([]byte("k"))
				if err != nil {
					return err
				}
				if attempts == 1 {
					// Another transaction commits k between our read and
					// our commit: a lost update unless we retry.
					if err := in.write(t, string(v)+"+theirs"); err != nil {
						return err
					}
				}
				return tx.Put([]byte("k"), append(v, "+mine"...))
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if attempts != 2 {
				t.Fatalf("fn ran %d times, want 2 (one conflict, one retry)", attempts)
			}
			wantValue(t, db, "k", "0+theirs+mine")
			after := db.Stats()
			if after.Retries != before.Retries+1 || after.Conflicts < before.Conflicts+1 {
				t.Fatalf("Stats: retries %d→%d conflicts %d→%d; want +1 retry, ≥ +1 conflict",
					before.Retries, after.Retries, before.Conflicts, after.Conflicts)
			}
		})
	}
}

func TestUpdateGivesUpAfterMaxAttempts(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "0")
	in := newInterferer(t, db, "k")
	attempts := 0
	// Up to EscalateAfterInMemory attempts run as planned (in memory); an adversary that
	// commits k between every read and commit makes each of them fail.
	policy := &txkv.RetryPolicy{MaxAttempts: txkv.EscalateAfterInMemory}
	err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Optimistic, Retry: policy}, func(tx *txkv.Tx) error {
		attempts++
		if _, err := tx.Get([]byte("k")); err != nil {
			return err
		}
		if err := in.write(t, "theirs"); err != nil {
			return err
		}
		return tx.Put([]byte("k"), []byte("mine"))
	})
	var ce *txkv.ConflictError
	if !errors.Is(err, txkv.ErrConflict) || !errors.As(err, &ce) || !txkv.IsRetryable(err) {
		t.Fatalf("Update conflicting every time = %v, want *ConflictError", err)
	}
	if string(ce.Key) != "k" || ce.Reason == "" {
		t.Fatalf("conflict detail %+v: want key k and a reason", ce)
	}
	if attempts != txkv.EscalateAfterInMemory {
		t.Fatalf("fn ran %d times, want MaxAttempts = %d", attempts, txkv.EscalateAfterInMemory)
	}
	wantValue(t, db, "k", "theirs")
}

// After EscalateAfter failed attempts (the default: EscalateAfterInMemory in memory,
// EscalateAfterDurable on a file) the retry takes, before fn runs, the lock it needs on the
// key it keeps losing: an adversary that commits k between our read and our commit whenever
// it can must now wait for it (and here gives up after a short timeout), and the Update
// commits within EscalateAfter+1 attempts — for every strategy, under both isolation levels.
// (Strategies that lock earlier — Pessimistic reads, Hybrid's retry — block the adversary
// sooner.)
func TestUpdateEscalatesAfterRepeatedConflicts(t *testing.T) {
	for _, onFile := range []bool{false, true} {
		for _, m := range allModes {
			t.Run(fmt.Sprintf("file=%v/%s", onFile, m.Name), func(t *testing.T) {
				db, after := openMem(t, nil), txkv.EscalateAfterInMemory
				if onFile {
					db, _ = openFile(t, nil)
					after = txkv.EscalateAfterDurable
				}
				testEscalation(t, db, m, after)
			})
		}
	}
}

func testEscalation(t *testing.T, db *txkv.DB, m mode, after int) {
	mustPut(t, db, "k", "0")
	attempts, won := 0, 0
	adversary := func() error {
		return db.Update(bg, &txkv.TxOptions{Strategy: txkv.Optimistic, LockTimeout: 20 * time.Millisecond},
			func(tx *txkv.Tx) error { return tx.Put([]byte("k"), fmt.Appendf(nil, "theirs%d", won+1)) })
	}
	err := db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error {
		attempts++
		v, err := tx.Get([]byte("k"))
		if err != nil {
			return err
		}
		switch aerr := runElsewhere(t, adversary); {
		case aerr == nil:
			won++
			if attempts > after {
				t.Errorf("attempt %d is escalated, yet the adversary committed k", attempts)
			}
		case !errors.Is(aerr, txkv.ErrLockTimeout):
			t.Errorf("attempt %d: the adversary got %v, want nil or ErrLockTimeout", attempts, aerr)
		}
		return tx.Put([]byte("k"), append(v, "+mine"...))
	})
	if err != nil {
		t.Fatalf("Update: %v after %d attempts", err, attempts)
	}
	if attempts > after+1 {
		t.Fatalf("Update took %d attempts, want at most %d", attempts, after+1)
	}
	want := "0+mine"
	if won > 0 {
		want = fmt.Sprintf("theirs%d+mine", won)
	}
	wantValue(t, db, "k", want)
}

// runElsewhere runs f in another goroutine and waits for it: the adversary's transaction
// must not share the Update's goroutine-bound state.
func runElsewhere(t *testing.T, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	return recv(t, done, "the adversary")
}

func TestUpdateDoesNotRetryOtherErrors(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			sentinel := errors.New("business rule says no")
			for _, want := range []error{sentinel, txkv.ErrNotFound, txkv.ErrLockTimeout} {
				attempts := 0
				err := db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error {
					attempts++
					if err := tx.Put([]byte("k"), []byte("v")); err != nil {
						return err
					}
					return want
				})
				if !errors.Is(err, want) || attempts != 1 {
					t.Fatalf("fn returning %v: Update = %v after %d attempts; want it once, as is", want, err, attempts)
				}
				wantAbsent(t, db, "k")
			}
			if l := db.Locks(); len(l) != 0 {
				t.Fatalf("locks left after failed Updates: %+v", l)
			}
		})
	}
}

func TestUpdatePanicRollsBackAndRepanics(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			mustPut(t, db, "k", "before")
			aborts := db.Stats().Aborts
			func() {
				defer func() {
					if r := recover(); r != "boom" {
						t.Fatalf("recovered %v, want the panic value boom", r)
					}
				}()
				_ = db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error {
					if err := tx.Put([]byte("k"), []byte("during")); err != nil {
						return err
					}
					if err := tx.Put([]byte("other"), []byte("x")); err != nil {
						return err
					}
					panic("boom")
				})
				t.Fatal("Update returned instead of re-panicking")
			}()
			wantValue(t, db, "k", "before")
			wantAbsent(t, db, "other")
			if l := db.Locks(); len(l) != 0 {
				t.Fatalf("locks left by the panicking Update: %+v", l)
			}
			if a := db.Stats().Aborts; a != aborts+1 {
				t.Fatalf("Stats().Aborts %d → %d, want one more", aborts, a)
			}
			// The DB is fine: it writes, and Close does not wait for a
			// transaction the panic left registered.
			mustPut(t, db, "k", "after")
			closed := make(chan error, 1)
			go func() { closed <- db.Close() }()
			if err := recv(t, closed, "Close after a panicking Update"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Two pessimistic Updates lock a,b and b,a: one is the deadlock victim,
// Update retries it, and both succeed.
func TestUpdateRetriesDeadlockVictim(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever})
	mustPut(t, db, "a", "0")
	mustPut(t, db, "b", "0")
	var arrived sync.WaitGroup // both hold their first lock
	arrived.Add(2)
	var mu sync.Mutex
	attempts := map[string]int{}
	run := func(name, first, second string) error {
		return db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: name}, func(tx *txkv.Tx) error {
			mu.Lock()
			attempts[name]++
			n := attempts[name]
			mu.Unlock()
			if err := tx.Put([]byte(first), []byte(name)); err != nil {
				return err
			}
			if n == 1 {
				arrived.Done()
				arrived.Wait()
			}
			return tx.Put([]byte(second), []byte(name))
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- run("T1", "a", "b") }()
	go func() { errs <- run("T2", "b", "a") }()
	for range 2 {
		if err := recv(t, errs, "both Updates"); err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	if total := attempts["T1"] + attempts["T2"]; total != 3 {
		t.Fatalf("attempts %v: want exactly one retry (one victim)", attempts)
	}
	a, _ := getString(t, db, "a")
	b, _ := getString(t, db, "b")
	if a != b {
		t.Fatalf("a=%s b=%s: the transactions interleaved", a, b)
	}
	dl := db.LastDeadlock()
	if dl == nil || len(dl.Cycle) != 2 || !errors.Is(dl, txkv.ErrDeadlock) {
		t.Fatalf("LastDeadlock = %v, want a 2-edge cycle", dl)
	}
	if s := db.Stats(); s.Deadlocks == 0 || s.Retries == 0 {
		t.Fatalf("Stats deadlocks %d retries %d, want both > 0", s.Deadlocks, s.Retries)
	}
}

// Hybrid: after a conflict the retry runs pessimistically and has already
// locked, in key order, what the failed attempt read (S) and wrote (X).
func TestHybridRetryRunsPessimisticWithPrelocks(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "r", "read-me")
	mustPut(t, db, "w", "0")
	in := newInterferer(t, db, "r")
	attempts := 0
	var strategies []txkv.Strategy
	err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Hybrid}, func(tx *txkv.Tx) error {
		attempts++
		strategies = append(strategies, tx.Strategy())
		if attempts == 2 {
			if !holds(db, tx.ID(), "r", txkv.Shared) || !holds(db, tx.ID(), "w", txkv.Exclusive) {
				t.Errorf("retry starts holding %+v; want S on r and X on w", db.Locks())
			}
		}
		if _, err := tx.Get([]byte("r")); err != nil {
			return err
		}
		if attempts == 1 {
			if err := in.write(t, "changed"); err != nil {
				return err
			}
		}
		return tx.Put([]byte("w"), []byte("done"))
	})
	if err != nil {
		t.Fatal(err)
	}
	// Attempt 1 reports hybrid (it runs optimistically); the retry runs, and
	// reports, pessimistic.
	if attempts != 2 || strategies[0] == txkv.Pessimistic || strategies[1] != txkv.Pessimistic {
		t.Fatalf("attempts %d strategies %v, want [hybrid pessimistic]", attempts, strategies)
	}
	wantValue(t, db, "w", "done")
}

// fn cancelling Update's own ctx: the commit must not happen.
func TestUpdateContextCancelledInsideFn(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			ctx, cancel := context.WithCancel(bg)
			defer cancel()
			err := db.Update(ctx, m.TxOptions(), func(tx *txkv.Tx) error {
				if err := tx.Put([]byte("k"), []byte("v")); err != nil {
					return err
				}
				cancel()
				return nil
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Update whose ctx was cancelled in fn = %v, want context.Canceled", err)
			}
			wantAbsent(t, db, "k")
		})
	}
}

// A storm of conflicting Updates — 32 goroutines moving money among 3 accounts with plain
// Get then Put, so pessimistic transactions deadlock upgrading S to X (and in three-way
// cycles across the accounts) and optimistic ones fail validation — where every Update must
// commit within a bounded number of attempts. Two rules bound it: past EscalateAfter failures
// a retry first locks, in key order, everything its failed attempts needed, and it is as old
// as its first attempt when a deadlock victim is chosen (the youngest loses), so it is not
// chosen again and again. The policy allows 100 attempts so that the test reports the worst
// case rather than cutting it off; it is far below that (7–9 attempts).
func TestConflictStormEveryUpdateCommits(t *testing.T) {
	for _, st := range []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive} {
		t.Run(st.String(), func(t *testing.T) {
			db := openMem(t, nil)
			for i := range 3 {
				mustPut(t, db, fmt.Sprintf("acct/%d", i), "100")
			}
			policy := &txkv.RetryPolicy{MaxAttempts: 100}
			var mu sync.Mutex
			worst, total := 0, 0
			var wg sync.WaitGroup
			for g := range 32 {
				wg.Go(func() {
					for i := range 40 {
						from, to := (g+i)%3, (g+i+1)%3
						attempts := 0
						err := db.Update(bg, &txkv.TxOptions{Strategy: st, Retry: policy}, func(tx *txkv.Tx) error {
							attempts++
							return moveOne(tx, from, to)
						})
						if err != nil {
							t.Errorf("Update after %d attempts: %v", attempts, err)
							return
						}
						mu.Lock()
						worst, total = max(worst, attempts), total+attempts
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			wantAccountsSum(t, db, 300)
			s := db.Stats()
			t.Logf("%v: %d Updates, %d attempts, worst %d; %d deadlocks, %d conflicts", st, 32*40, total, worst, s.Deadlocks, s.Conflicts)
		})
	}
}

// The default retry policy is enough for a hot counter: 16 goroutines incrementing one key
// with plain Get then Put — yielding between the two so that they interleave — in memory
// and on a file, under every strategy, and no Update fails. An escalated retry holds the
// key exclusively from its start, and a single key admits no deadlock cycle through a
// transaction that holds it before it waits for anything.
func TestHotCounterDefaultPolicyNeverFails(t *testing.T) {
	for _, onFile := range []bool{false, true} {
		for _, st := range []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive} {
			t.Run(fmt.Sprintf("file=%v/%v", onFile, st), func(t *testing.T) {
				db := openMem(t, nil)
				if onFile {
					db, _ = openFile(t, nil)
				}
				mustPut(t, db, "counter", "0")
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						for range 25 {
							err := db.Update(bg, &txkv.TxOptions{Strategy: st}, func(tx *txkv.Tx) error {
								v, err := tx.Get([]byte("counter"))
								if err != nil {
									return err
								}
								n, _ := strconv.Atoi(string(v))
								runtime.Gosched()
								return tx.Put([]byte("counter"), []byte(strconv.Itoa(n+1)))
							})
							if err != nil {
								t.Errorf("Update: %v", err)
								return
							}
						}
					})
				}
				wg.Wait()
				wantValue(t, db, "counter", "400")
			})
		}
	}
}

// wantAccountsSum checks that the three accounts hold sum between them.
func wantAccountsSum(t *testing.T, db *txkv.DB, sum int) {
	t.Helper()
	got := 0
	for i := range 3 {
		v, _ := getString(t, db, fmt.Sprintf("acct/%d", i))
		n, _ := strconv.Atoi(v)
		got += n
	}
	if got != sum {
		t.Fatalf("accounts sum to %d, want %d", got, sum)
	}
}

// moveOne moves 1 from account from to account to, reading each before writing it.
func moveOne(tx *txkv.Tx, from, to int) error {
	for _, a := range []struct{ acct, delta int }{{from, -1}, {to, +1}} {
		k := []byte(fmt.Sprintf("acct/%d", a.acct))
		v, err := tx.Get(k)
		if err != nil {
			return err
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return err
		}
		runtime.Gosched() // let the others in between the read and the write: a storm
		if err := tx.Put(k, []byte(strconv.Itoa(n+a.delta))); err != nil {
			return err
		}
	}
	return nil
}
