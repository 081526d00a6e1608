package txkv_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/testenv"
)

// Explicit locking patterns (issue 4 "Explicit locking"; architecture §2, §4):
// the SKIP LOCKED job queue, date-range booking with LockRange, deadlock
// prevention by LockKeys' canonical order, FOR SHARE / FOR UPDATE
// compatibility, and explicit locks working the same under every strategy.

// lockRetry is a retry policy for concurrent tests whose transactions may
// conflict often: they must eventually succeed, not give up after 10.
var lockRetry = &txkv.RetryPolicy{MaxAttempts: 10000, BaseDelay: 10 * time.Microsecond, MaxDelay: time.Millisecond}

// seedFromEnv returns the seed named by env, or a fresh one, and logs it.
func seedFromEnv(t *testing.T, env string) uint64 { return testenv.Seed(t, env) }

// ---- the job queue ------------------------------------------------------

func TestJobQueueSkipLocked(t *testing.T) { forModes(t, allModes, testJobQueueSkipLocked) }

// N workers each claim up to three jobs with ScanForUpdate(…, SkipLocked()),
// record who handled them and delete them, concurrently (the first round
// overlapping by construction). Every job is
// handled exactly once and no claim ever waits for a lock: Stats().LockWaits
// does not move. (Under Snapshot a worker whose snapshot predates another's
// delete of a row it then claims gets ErrConflict, PostgreSQL's REPEATABLE
// READ rule; Update retries it — a retry, not a wait.)
func testJobQueueSkipLocked(t *testing.T, m mode) {
	const workers, jobs, batch = 4, 120, 3
	db := openMem(t, specOptions())
	for i := range jobs {
		mustPut(t, db, fmt.Sprintf("job/%04d", i), "todo")
	}
	before := db.Stats()
	var mu sync.Mutex
	handled := map[string][]int{} // job → the workers whose commit handled it
	// In the first round every worker holds its claim until all have
	// claimed, so they certainly overlap: all but the first to reach a row
	// must skip it.
	var firstRound sync.WaitGroup
	firstRound.Add(workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			opts := m.TxOptions()
			opts.Retry, opts.Label = lockRetry, fmt.Sprintf("worker%d", w)
			first := true
			for {
				var claimed []string
				err := db.Update(bg, opts, func(tx *txkv.Tx) error {
					claimed = claimed[:0]
					kvs, err := tx.ScanForUpdate([]byte("job/"), []byte("job0"), batch, txkv.SkipLocked())
					if err != nil {
						return err
					}
					if first {
						first = false
						firstRound.Done()
						firstRound.Wait()
					}
					for _, kv := range kvs {
						claimed = append(claimed, string(kv.Key))
						if err := tx.Put([]byte("done/"+string(kv.Key)), []byte(strconv.Itoa(w))); err != nil {
							return err
						}
						if err := tx.Delete(kv.Key); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Errorf("worker %d: %v", w, err)
					return
				}
				if len(claimed) == 0 {
					return // every job is done or claimed by a running worker that will finish it
				}
				mu.Lock()
				for _, j := range claimed {
					handled[j] = append(handled[j], w)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	after := db.Stats()
	skipped := after.NotAvailable - before.NotAvailable
	t.Logf("%d workers, %d jobs: %d rows skipped, %d retries, %d conflicts",
		workers, jobs, skipped, after.Retries-before.Retries, after.Conflicts-before.Conflicts)
	if after.LockWaits != before.LockWaits {
		t.Fatalf("Stats().LockWaits %d → %d: a SKIP LOCKED worker waited", before.LockWaits, after.LockWaits)
	}
	if skipped < workers-1 {
		t.Fatalf("%d rows skipped: in the first round at least %d workers must skip job/0000", skipped, workers-1)
	}
	for i := range jobs {
		j := fmt.Sprintf("job/%04d", i)
		if ws := handled[j]; len(ws) != 1 {
			t.Fatalf("%s handled by workers %v, want exactly one", j, ws)
		}
		wantAbsent(t, db, j)
		wantValue(t, db, "done/"+j, strconv.Itoa(handled[j][0]))
	}
	if len(handled) != jobs {
		t.Fatalf("%d jobs handled, want %d", len(handled), jobs)
	}
	wantLocks(t, db)
}

// ---- date-range booking with LockRange ----------------------------------

func dayKey(room, day int) string { return fmt.Sprintf("room/%d/day/%02d", room, day) }

// bookSteps are the steps of booking room for days [from, to): lock the
// date range, look for bookings in it, and write one key per day unless
// one was found (errRefused).
func bookSteps(room, from, to int, who string) (lock, check, write func(*txkv.Tx) error) {
	lo, hi := dayKey(room, from), dayKey(room, to)
	var free bool
	lock = func(tx *txkv.Tx) error { return tx.LockRange([]byte(lo), []byte(hi), txkv.Exclusive) }
	check = func(tx *txkv.Tx) error {
		n := 0
		err := tx.Scan([]byte(lo), []byte(hi), func(_, _ []byte) error { n++; return nil })
		free = n == 0
		return err
	}
	write = func(tx *txkv.Tx) error {
		if !free {
			return errRefused
		}
		for d := from; d < to; d++ {
			if err := tx.Put([]byte(dayKey(room, d)), []byte(who)); err != nil {
				return err
			}
		}
		return nil
	}
	return lock, check, write
}

func TestBookingLockRange(t *testing.T) { forModes(t, allModes, testBookingLockRange) }

// T1 books days [3,6) and T2 the overlapping [5,8): T2's LockRange waits
// for T1, so the two serialize. T3 books [8,10), overlapping neither: it
// proceeds in parallel with T1 (both range locks granted together, as
// Locks() shows). After T1 commits, T2 either sees T1's booking and
// refuses, or — when its reads come from a snapshot older than T1's commit
// — fails with a retryable conflict, and its retry refuses. No day is
// ever booked twice.
func testBookingLockRange(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	t1, t2, t3 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2")), sc.begin("T3", specOpts(m, "T3"))
	lock1, check1, write1 := bookSteps(1, 3, 6, "T1")
	lock2, check2, write2 := bookSteps(1, 5, 8, "T2")
	lock3, check3, write3 := bookSteps(1, 8, 10, "T3")
	t1.do("lock [3,6)", lock1)
	t2.do("lock [5,8)", lock2)
	t2.mustBlock("lock [5,8)")
	t2.do("check", check2)
	t2.do("book", write2)
	t2.commit()
	t3.do("lock [8,10)", lock3)
	t3.mustNotBlock("lock [8,10)")
	sc.logLocks("while T1 and T3 book in parallel")
	wantLocks(t, db,
		`["room/1/day/03","room/1/day/06"): T1 X granted`,
		`["room/1/day/05","room/1/day/08"): T2 X waiting`,
		`["room/1/day/08","room/1/day/10"): T3 X granted`)
	t3.do("check", check3)
	t3.do("book", write3)
	t1.do("check", check1)
	t1.do("book", write1)
	t1.commit()
	t2.awaitStep("commit")
	t3.commit()
	sc.finish()

	if !t1.committed() || !t3.committed() {
		t.Fatalf("T1 %v, T3 %v: the non-overlapping bookings must both commit", t1.failure(), t3.failure())
	}
	if err := t2.failure(); !errors.Is(err, errRefused) && !txkv.IsRetryable(err) {
		t.Fatalf("T2 (overlapping T1) ended with %v, want refused or a retryable conflict", err)
	}
	// What Update would do with T2: retry, see T1's booking, refuse.
	err := db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error {
		lock, check, write := bookSteps(1, 5, 8, "T2")
		for _, f := range []func(*txkv.Tx) error{lock, check, write} {
			if err := f(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, errRefused) {
		t.Fatalf("T2 retried = %v, want refused", err)
	}
	for d, who := range map[int]string{3: "T1", 4: "T1", 5: "T1", 8: "T3", 9: "T3"} {
		wantValue(t, db, dayKey(1, d), who)
	}
	for _, d := range []int{6, 7} {
		wantAbsent(t, db, dayKey(1, d))
	}
}

func TestBookingLockRangeConcurrent(t *testing.T) {
	seed := seedFromEnv(t, "TXKV_BOOKING_SEED")
	forModes(t, allModes, func(t *testing.T, m mode) { testBookingConcurrent(t, m, seed) })
}

// Goroutines book random stays of 1–3 days in two rooms through Update.
// Afterwards every successful booking owns all its days, no two overlap,
// and nobody deadlocked: each transaction takes one range lock and then
// writes only inside it.
func testBookingConcurrent(t *testing.T, m mode, seed uint64) {
	const goroutines, each, days = 4, 15, 20
	db := openMem(t, nil)
	type booking struct{ room, from, to int }
	var mu sync.Mutex
	booked := map[string]booking{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := range each {
				b := booking{room: 1 + rng.IntN(2), from: rng.IntN(days)}
				b.to = min(b.from+1+rng.IntN(3), days)
				who := fmt.Sprintf("g%d-%d", g, i)
				opts := m.TxOptions()
				opts.Retry = lockRetry
				err := db.Update(bg, opts, func(tx *txkv.Tx) error {
					lock, check, write := bookSteps(b.room, b.from, b.to, who)
					for _, f := range []func(*txkv.Tx) error{lock, check, write} {
						if err := f(tx); err != nil {
							return err
						}
					}
					return nil
				})
				switch {
				case err == nil:
					mu.Lock()
					booked[who] = b
					mu.Unlock()
				case !errors.Is(err, errRefused):
					t.Errorf("%s: %v", who, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	owner := map[string]string{}
	for who, b := range booked {
		for d := b.from; d < b.to; d++ {
			k := dayKey(b.room, d)
			if prev, dup := owner[k]; dup {
				t.Fatalf("%s booked by both %s and %s", k, prev, who)
			}
			owner[k] = who
			wantValue(t, db, k, who)
		}
	}
	if len(booked) == 0 {
		t.Fatal("no booking succeeded")
	}
	if s := db.Stats(); s.Deadlocks != 0 {
		t.Fatalf("Stats().Deadlocks = %d: one range lock per transaction cannot deadlock", s.Deadlocks)
	}
	t.Logf("%d of %d bookings accepted", len(booked), goroutines*each)
}

// ---- LockKeys: canonical order ------------------------------------------

func TestLockKeysCanonicalOrder(t *testing.T) { forModes(t, allModes, testLockKeysCanonicalOrder) }

// T1 LockKeys(X, a, b) ✓; T2 LockKeys(X, b, a) waits on a — the first key
// in byte order — holding nothing, so it cannot be part of a cycle. The
// same two transactions locking one key at a time in their own orders
// deadlock (the contrast that shows what LockKeys prevents).
func testLockKeysCanonicalOrder(t *testing.T, m mode) {
	t.Run("LockKeys", func(t *testing.T) {
		db := openMem(t, specOptions())
		sc := newSched(t, db)
		t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
		t1.do("LockKeys(a,b)", func(tx *txkv.Tx) error { return tx.LockKeys(txkv.Exclusive, []byte("a"), []byte("b")) })
		t2.do("LockKeys(b,a,b)", func(tx *txkv.Tx) error {
			return tx.LockKeys(txkv.Exclusive, []byte("b"), []byte("a"), []byte("b"))
		})
		t2.mustBlock("LockKeys(b,a,b)")
		sc.logLocks("T2 waits")
		wantLocks(t, db, `"a": T1 X granted`, `"a": T2 X waiting`, `"b": T1 X granted`)
		t1.commit()
		t2.awaitStep("LockKeys(b,a,b)")
		wantLocks(t, db, `"a": T2 X granted`, `"b": T2 X granted`)
		t2.commit()
		sc.finish()
		wantNoDeadlocks(t, db, t1, t2)
	})
	t.Run("one-at-a-time", func(t *testing.T) {
		db := openMem(t, specOptions())
		sc := newSched(t, db)
		t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
		t1.do("X(a)", lockKey(txkv.Exclusive, "a"))
		t2.do("X(b)", lockKey(txkv.Exclusive, "b"))
		t1.do("X(b)", lockKey(txkv.Exclusive, "b"))
		t2.do("X(a)", lockKey(txkv.Exclusive, "a"))
		t1.awaitStep("X(b)")
		t2.awaitStep("X(a)")
		t1.commit()
		t2.commit()
		sc.finish()
		if n := db.Stats().Deadlocks; n != 1 {
			t.Fatalf("Stats().Deadlocks = %d: locking a,b against b,a one at a time must deadlock once", n)
		}
	})
}

// Rounds of three transactions locking {a,b,c} in three different orders
// with LockKeys, released together by a barrier, then writing all three
// keys: never a deadlock (Stats().Deadlocks == 0), never a failure, and
// each round's writes are never interleaved (all three keys hold the same
// writer's value).
func TestLockKeysNeverDeadlocks(t *testing.T) {
	const rounds = 200
	db := openMem(t, specOptions())
	orders := [][]string{{"a", "b", "c"}, {"c", "b", "a"}, {"b", "c", "a"}}
	for round := range rounds {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for g, order := range orders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				tx, err := db.Begin(bg, &txkv.TxOptions{Strategy: allModes[(round+g)%len(allModes)].Strategy})
				if err != nil {
					t.Error(err)
					return
				}
				keys := make([][]byte, len(order))
				for i, k := range order {
					keys[i] = []byte(k)
				}
				err = tx.LockKeys(txkv.Exclusive, keys...)
				for _, k := range keys {
					if err == nil {
						err = tx.Put(k, []byte(fmt.Sprintf("r%d-g%d", round, g)))
					}
				}
				if err == nil {
					err = tx.Commit()
				}
				if err != nil {
					_ = tx.Rollback()
					t.Errorf("round %d, order %v: %v", round, order, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}
		a, _ := getString(t, db, "a")
		for _, k := range []string{"b", "c"} {
			if v, _ := getString(t, db, k); v != a {
				t.Fatalf("round %d: a=%s %s=%s: the writers interleaved", round, a, k, v)
			}
		}
	}
	if s := db.Stats(); s.Deadlocks != 0 {
		t.Fatalf("Stats().Deadlocks = %d after %d rounds, want 0", s.Deadlocks, rounds)
	}
}

// ---- FOR SHARE / FOR UPDATE compatibility -------------------------------

func TestShareUpdateCompatibility(t *testing.T) {
	forModes(t, allModes, testShareUpdateCompatibility)
}

// The S/X matrix through GetForShare and GetForUpdate: only share/share is
// compatible. With NOWAIT an incompatible request fails at once
// (ErrLockNotAvailable) and a compatible one is granted; without it, the
// incompatible request waits and is granted when the holder commits.
func testShareUpdateCompatibility(t *testing.T, m mode) {
	modes := map[txkv.LockMode]string{txkv.Shared: "S", txkv.Exclusive: "X"}
	for _, held := range []txkv.LockMode{txkv.Shared, txkv.Exclusive} {
		for _, asked := range []txkv.LockMode{txkv.Shared, txkv.Exclusive} {
			name := modes[held] + "-then-" + modes[asked]
			compatible := held == txkv.Shared && asked == txkv.Shared
			t.Run(name, func(t *testing.T) {
				db := openMem(t, specOptions())
				mustPut(t, db, "k", "v0")
				sc := newSched(t, db)
				t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
				t1.do("lock", lockKey(held, "k"))
				err := t2.tryStep("lock NOWAIT", lockKey(asked, "k", txkv.NoWait()))
				if compatible != (err == nil) || !compatible && !errors.Is(err, txkv.ErrLockNotAvailable) {
					t.Fatalf("%s(k) NOWAIT while another holds %s(k) = %v (compatible: %v)", modes[asked], modes[held], err, compatible)
				}
				if compatible {
					wantLocks(t, db, `"k": T1 S granted`, `"k": T2 S granted`)
					t1.commit()
				} else {
					t2.do("lock", lockKey(asked, "k"))
					t2.mustBlock("lock")
					t1.commit()
					if r := t2.awaitStep("lock"); r.err != nil {
						t.Fatalf("%s(k) after the holder committed = %v", modes[asked], r.err)
					}
				}
				t2.commit()
				sc.finish()
			})
		}
	}
}

// ---- explicit locks under every strategy --------------------------------

func TestExplicitLocksUnderEveryStrategy(t *testing.T) {
	forModes(t, allModes, testExplicitLocksEveryStrategy)
}

// Explicit locks always take real locks, whatever the strategy (architecture §3):
// a FOR SHARE reader keeps a writer out until it ends (strict 2PL waits at
// the Put, the optimistic strategies at the commit's write-set locks); a
// FOR UPDATE holder keeps a FOR SHARE reader out, which then reads the new
// value (Serializable) or fails with ErrConflict (Snapshot: the row changed
// after its snapshot, PostgreSQL's REPEATABLE READ rule); a shared LockRange
// keeps an insert into the range out; ScanForUpdate's rows are locked.
func testExplicitLocksEveryStrategy(t *testing.T, m mode) {
	put := func(key, value string) func(*txkv.Tx) error {
		return func(tx *txkv.Tx) error { return tx.Put([]byte(key), []byte(value)) }
	}
	// writerWaits runs "put, commit" in s and checks that one of them waited.
	writerWaits := func(t *testing.T, s *session, key, value string) {
		t.Helper()
		s.do("put", put(key, value))
		s.commit()
		if !s.blockedIn("put") && !s.blockedIn("commit") {
			t.Fatalf("%s's write of %s did not wait for the explicit lock", s.name, key)
		}
		if m.Strategy == txkv.Pessimistic && !s.blockedIn("put") {
			t.Fatalf("strict 2PL must wait at the Put")
		}
	}
	t.Run("share-blocks-writer", func(t *testing.T) {
		db := openMem(t, specOptions())
		mustPut(t, db, "k", "v0")
		sc := newSched(t, db)
		r, w := sc.begin("R", specOpts(m, "R")), sc.begin("W", specOpts(m, "W"))
		var seen string
		r.do("S(k)", func(tx *txkv.Tx) error {
			v, err := tx.GetForShare([]byte("k"))
			seen = string(v)
			return err
		})
		writerWaits(t, w, "k", "v1")
		r.do("reread", func(tx *txkv.Tx) error {
			v, err := tx.GetForShare([]byte("k"))
			if err == nil && string(v) != seen {
				err = fmt.Errorf("the value under FOR SHARE changed from %s to %s", seen, v)
			}
			return err
		})
		r.commit()
		w.awaitStep("commit")
		sc.finish()
		if !r.committed() || !w.committed() {
			t.Fatalf("R %v, W %v: both must commit", r.failure(), w.failure())
		}
		wantValue(t, db, "k", "v1")
	})
	t.Run("update-blocks-share", func(t *testing.T) {
		db := openMem(t, specOptions())
		mustPut(t, db, "k", "v0")
		sc := newSched(t, db)
		u, r := sc.begin("U", specOpts(m, "U")), sc.begin("R", specOpts(m, "R"))
		var seen string
		u.do("X(k)", lockKey(txkv.Exclusive, "k"))
		u.do("put", put("k", "v1"))
		r.do("S(k)", func(tx *txkv.Tx) error {
			v, err := tx.GetForShare([]byte("k"))
			seen = string(v)
			return err
		})
		r.mustBlock("S(k)")
		u.commit()
		res := r.awaitStep("S(k)")
		r.commit()
		sc.finish()
		if m.Serializable() {
			if res.err != nil || seen != "v1" {
				t.Fatalf("FOR SHARE after the FOR UPDATE holder committed v1 = %q, %v; want v1", seen, res.err)
			}
		} else if !errors.Is(res.err, txkv.ErrConflict) {
			t.Fatalf("Snapshot FOR SHARE of a row changed after the snapshot = %q, %v; want ErrConflict", seen, res.err)
		}
	})
	t.Run("range-blocks-insert", func(t *testing.T) {
		db := openMem(t, specOptions())
		sc := newSched(t, db)
		l, w := sc.begin("L", specOpts(m, "L")), sc.begin("W", specOpts(m, "W"))
		l.do("S[r/,r0)", func(tx *txkv.Tx) error { return tx.LockRange([]byte("r/"), []byte("r0"), txkv.Shared) })
		writerWaits(t, w, "r/new", "x")
		l.commit()
		w.awaitStep("commit")
		sc.finish()
		if !w.committed() {
			t.Fatalf("the insert failed after the range lock went: %v", w.failure())
		}
	})
	t.Run("scan-for-update-locks-rows", func(t *testing.T) {
		db := openMem(t, specOptions())
		seedQueue(t, db, 3)
		sc := newSched(t, db)
		s, r := sc.begin("S", specOpts(m, "S")), sc.begin("R", specOpts(m, "R"))
		var got []string
		s.do("scan", func(tx *txkv.Tx) error {
			kvs, err := tx.ScanForUpdate([]byte("q/"), []byte("q0"), 2)
			for _, kv := range kvs {
				got = append(got, string(kv.Key))
			}
			return err
		})
		if !slices.Equal(got, []string{"q/1", "q/2"}) {
			t.Fatalf("ScanForUpdate limit 2 = %v", got)
		}
		wantLocks(t, db, `"q/1": S X granted`, `"q/2": S X granted`)
		r.do("S(q/3)", lockKey(txkv.Shared, "q/3"))
		r.mustNotBlock("S(q/3)")
		r.do("S(q/2)", lockKey(txkv.Shared, "q/2"))
		r.mustBlock("S(q/2)")
		s.commit()
		r.awaitStep("S(q/2)")
		r.commit()
		sc.finish()
		if !s.committed() || !r.committed() {
			t.Fatalf("S %v, R %v: both must commit", s.failure(), r.failure())
		}
	})
}

// A SKIP LOCKED worker must not wait even when Update retries it. Hybrid's
// retry runs pessimistically and first locks, blocking, what the failed
// attempt touched — including the row the attempt had claimed with SKIP
// LOCKED, which another transaction may have taken since. The worker then
// waits for that row (and deadlocks if the other one next writes a key the
// retry prelocked). Here: worker A claims job/1 and reads cfg; C queues for
// job/1 with a plain FOR UPDATE; cfg changes, so A's commit fails
// validation and rolls back, and C gets job/1. A's retry must not wait for
// job/1: its fn asks again with SKIP LOCKED and claims job/2.
func TestHybridRetryDoesNotWaitForSkippedRows(t *testing.T) {
	db := openMem(t, specOptions())
	for _, k := range []string{"job/1", "job/2"} {
		mustPut(t, db, k, "todo")
	}
	mustPut(t, db, "cfg", "v0")
	ready, proceed := make(chan struct{}), make(chan struct{})
	attempts := 0
	var claimed string
	done := make(chan error, 1)
	go func() {
		done <- db.Update(bg, &txkv.TxOptions{Strategy: txkv.Hybrid, Label: "A"}, func(tx *txkv.Tx) error {
			attempts++
			claimed = ""
			kvs, err := tx.ScanForUpdate([]byte("job/"), []byte("job0"), 1, txkv.SkipLocked())
			if err != nil || len(kvs) == 0 {
				return err
			}
			if _, err := tx.Get([]byte("cfg")); err != nil {
				return err
			}
			claimed = string(kvs[0].Key)
			if err := tx.Put([]byte("done/"+claimed), []byte("A")); err != nil {
				return err
			}
			if err := tx.Delete(kvs[0].Key); err != nil {
				return err
			}
			if attempts == 1 {
				close(ready)
				<-proceed
			}
			return nil
		})
	}()
	<-ready
	c := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "C"})
	defer func() { _ = c.Rollback() }()
	cGot := make(chan error, 1)
	go func() { _, err := c.GetForUpdate([]byte("job/1")); cGot <- err }()
	waitFor(t, "C to queue for job/1", func() bool { return isWaiting(db, c.ID()) })
	mustPut(t, db, "cfg", "v1") // A's read of cfg is now stale
	close(proceed)
	if err := recv(t, cGot, "C's grant of job/1"); err != nil {
		t.Fatal(err)
	}
	aWaits := func() bool {
		for _, l := range db.Locks() {
			if l.Label == "A" && !l.Granted {
				return true
			}
		}
		return false
	}
	var aErr error
	finished := false
	waitFor(t, "A to finish or wait", func() bool {
		select {
		case aErr = <-done:
			finished = true
			return true
		default:
			return aWaits()
		}
	})
	if !finished {
		t.Errorf("A's retry waits for a row its failed attempt claimed with SKIP LOCKED: %v", lockTable(db))
		_ = c.Rollback() // let A go
		aErr = recv(t, done, "A")
	}
	if aErr != nil {
		t.Fatalf("A: %v", aErr)
	}
	if attempts != 2 || claimed != "job/2" {
		t.Fatalf("A ran %d attempts and last claimed %q, want 2 and job/2", attempts, claimed)
	}
	if n := db.Stats().Deadlocks; n != 0 {
		t.Fatalf("Stats().Deadlocks = %d, want 0", n)
	}
}

func TestScanForUpdateAcrossBatches(t *testing.T) {
	forModes(t, allModes, testScanForUpdateAcrossBatches)
}

// ScanForUpdate reads candidates a batch at a time: a claim of a few rows
// behind a long run of rows held by others (more than a batch), and a claim
// without a limit over more rows than a batch, both return exactly the free
// rows, in key order.
func testScanForUpdateAcrossBatches(t *testing.T, m mode) {
	const rows, held = 300, 100
	db := openMem(t, specOptions())
	for i := range rows {
		mustPut(t, db, fmt.Sprintf("job/%04d", i), "todo")
	}
	holder, err := db.Begin(bg, specOpts(m, "holder"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	kvs, err := holder.ScanForUpdate([]byte("job/"), []byte("job0"), held, txkv.SkipLocked())
	if err != nil || len(kvs) != held {
		t.Fatalf("holder claimed %d rows (%v), want %d", len(kvs), err, held)
	}
	for _, limit := range []int{5, 0} {
		tx, err := db.Begin(bg, specOpts(m, "worker"))
		if err != nil {
			t.Fatal(err)
		}
		kvs, err := tx.ScanForUpdate([]byte("job/"), []byte("job0"), limit, txkv.SkipLocked())
		if err != nil {
			t.Fatal(err)
		}
		want := rows - held
		if limit > 0 {
			want = limit
		}
		if len(kvs) != want {
			t.Fatalf("limit %d: claimed %d rows, want %d", limit, len(kvs), want)
		}
		for i, kv := range kvs {
			if w := fmt.Sprintf("job/%04d", held+i); string(kv.Key) != w {
				t.Fatalf("limit %d: row %d is %s, want %s", limit, i, kv.Key, w)
			}
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
}

// Locks() reads as a walk along the key space: by start key, a point before a range that
// starts at the same key — so a range [12-01, 12-08) lists before a point lock on 12-05.
func TestLocksSortedAlongTheKeySpace(t *testing.T) {
	db := openMem(t, nil)
	day := func(d string) []byte { return []byte("room/7/2026-" + d) }
	book := mustBegin(t, db, &txkv.TxOptions{Label: "booking"})
	defer func() { _ = book.Rollback() }()
	if err := book.LockRange(day("12-01"), day("12-08"), txkv.Shared); err != nil {
		t.Fatal(err)
	}
	other := mustBegin(t, db, &txkv.TxOptions{Label: "other"})
	defer func() { _ = other.Rollback() }()
	if err := other.LockKeys(txkv.Shared, day("12-09"), day("12-05"), day("11-30"), day("12-01")); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range db.Locks() {
		s := string(l.Key)[len("room/7/2026-"):]
		if l.Range {
			s = "[" + s + ")"
		}
		got = append(got, s)
	}
	want := []string{"11-30", "12-01", "[12-01)", "12-05", "12-09"}
	if !slices.Equal(got, want) {
		t.Fatalf("Locks() in order %v, want %v", got, want)
	}
}

// Two pessimistic transactions that read a key (S) and then write it (S→X) deadlock; the
// report says what each holds — shared, converting to exclusive — rather than reading as if
// both held X, and points to GetForUpdate.
func TestUpgradeDeadlockSaysWhatEachHolds(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "0")
	t1 := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	t2 := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	for _, tx := range []*txkv.Tx{t1, t2} {
		if _, err := tx.Get([]byte("k")); err != nil {
			t.Fatal(err)
		}
	}
	first := make(chan error, 1)
	go func() { first <- t1.Put([]byte("k"), []byte("1")) }()
	waitFor(t, "t1's upgrade to wait", func() bool { return isWaiting(db, t1.ID()) })
	err := t2.Put([]byte("k"), []byte("2"))
	var de *txkv.DeadlockError
	if !errors.As(err, &de) {
		t.Fatalf("t2's upgrade = %v, want a deadlock", err)
	}
	msg := err.Error()
	for _, want := range []string{"holds shared, wants exclusive", "a lock upgrade", "held shared by", "GetForUpdate"} {
		if !strings.Contains(msg, want) {
			t.Errorf("deadlock report lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "held exclusive") {
		t.Errorf("the report says a shared holder holds exclusive:\n%s", msg)
	}
	if err := recv(t, first, "t1's upgrade"); err != nil {
		t.Fatal(err)
	}
	if err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	if hk := db.HotKeys(1); len(hk) != 1 || string(hk[0].Key) != "k" || hk[0].Deadlocks != 1 || hk[0].LockWaits < 1 {
		t.Fatalf("HotKeys = %+v, want k with one deadlock and its waits", hk)
	}
}
