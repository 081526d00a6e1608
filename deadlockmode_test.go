package txkv_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Options.DeadlockDetection (architecture §2, §4): Immediate searches when a
// request must wait (InnoDB), Periodic from a background sweep every
// DeadlockInterval (PostgreSQL's deadlock_timeout), Off relies on lock
// timeouts (innodb_deadlock_detect=OFF). Each is run on the classic
// crossing: T1 X(a); T2 X(b); T1 X(b) ⏳; T2 X(a) closes the cycle.

func crossing(t *testing.T, db *txkv.DB) (sc *sched, t1, t2 *session) {
	sc = newSched(t, db)
	t1, t2 = sc.begin("T1", specOpts(pessimisticSerializable, "T1")), sc.begin("T2", specOpts(pessimisticSerializable, "T2"))
	t1.do("X(a)", lockKey(txkv.Exclusive, "a"))
	t2.do("X(b)", lockKey(txkv.Exclusive, "b"))
	t1.do("X(b)", lockKey(txkv.Exclusive, "b"))
	t1.mustBlock("X(b)")
	t2.do("X(a)", lockKey(txkv.Exclusive, "a"))
	return sc, t1, t2
}

// wantCrossingBrokenOnce: T2 (the youngest) is the one victim, with the
// 2-edge cycle over a and b; T1 completes and commits.
func wantCrossingBrokenOnce(t *testing.T, db *txkv.DB, sc *sched, t1, t2 *session) {
	t.Helper()
	r2 := t2.awaitStep("X(a)")
	de := wantDeadlock(t, r2.err, 2, t1, t2)
	if de.Victim != t2.tx.ID() {
		t.Fatalf("victim tx %d, want T2 (tx %d), the youngest", de.Victim, t2.tx.ID())
	}
	keys := map[string]bool{}
	for _, e := range de.Cycle {
		keys[string(e.Key)] = true
	}
	if !keys["a"] || !keys["b"] {
		t.Fatalf("cycle %v does not name both a and b", de.Cycle)
	}
	if r1 := t1.awaitStep("X(b)"); r1.err != nil {
		t.Fatalf("T1 X(b) after T2 was aborted = %v", r1.err)
	}
	t1.commit()
	sc.finish()
	if !t1.committed() {
		t.Fatalf("T1: %v", t1.failure())
	}
	if last := db.LastDeadlock(); last == nil || last.Victim != de.Victim || len(last.Cycle) != 2 {
		t.Fatalf("LastDeadlock() = %v, want %v", last, de)
	}
	if s := db.Stats(); s.Deadlocks != 1 || s.LockTimeouts != 0 || s.AbortsByReason["deadlock"] != 1 {
		t.Fatalf("Stats: %d deadlocks, %d lock timeouts, %d deadlock aborts; want 1, 0, 1",
			s.Deadlocks, s.LockTimeouts, s.AbortsByReason["deadlock"])
	}
	wantLocks(t, db)
}

// Immediate: T2's request finds the cycle itself; the victim is chosen at
// once, with no timeout (there is none) and no sweep (there is none).
func TestDeadlockDetectionImmediate(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever, DeadlockDetection: txkv.DeadlockImmediate})
	sc, t1, t2 := crossing(t, db)
	wantCrossingBrokenOnce(t, db, sc, t1, t2)
}

// Periodic with a short interval: nobody searches at request time; the
// sweep finds the cycle and breaks it, with no lock timeout to help.
func TestDeadlockDetectionPeriodic(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever, DeadlockDetection: txkv.DeadlockPeriodic,
		DeadlockInterval: 10 * time.Millisecond})
	sc, t1, t2 := crossing(t, db)
	wantCrossingBrokenOnce(t, db, sc, t1, t2)
}

// Periodic with a sweep that never comes in the test's lifetime: the cycle
// is not broken at request time — both wait, and no deadlock is reported.
// Close then ends the waits: with ErrClosed, or — if Close's rollback of
// one released the lock the other waited for first — with the lock. This is
// the contrast that shows Periodic's victim above came from the sweep.
func TestDeadlockDetectionPeriodicWaitsForTheSweep(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever, DeadlockDetection: txkv.DeadlockPeriodic,
		DeadlockInterval: time.Hour})
	sc, t1, t2 := crossing(t, db)
	t2.mustBlock("X(a)")
	sc.logLocks("both wait")
	wantLocks(t, db, `"a": T1 X granted`, `"a": T2 X waiting`, `"b": T2 X granted`, `"b": T1 X waiting`)
	if s := db.Stats(); s.Deadlocks != 0 || db.LastDeadlock() != nil {
		t.Fatalf("a deadlock was reported before any sweep: %d, %v", s.Deadlocks, db.LastDeadlock())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*session{t1, t2} {
		name := map[*session]string{t1: "X(b)", t2: "X(a)"}[s]
		if r := s.awaitStep(name); r.err != nil && !errors.Is(r.err, txkv.ErrClosed) {
			t.Fatalf("%s %s after Close = %v, want ErrClosed (or the lock)", s.name, name, r.err)
		}
	}
	sc.finish()
}

// Off: only the lock timeout ends a deadlock. Both requests wait out their
// own timeout (a timeout fails only the request: T1 keeps a, so T2 times
// out too); no deadlock is ever reported.
func TestDeadlockDetectionOff(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: 100 * time.Millisecond, DeadlockDetection: txkv.DeadlockOff})
	sc, t1, t2 := crossing(t, db)
	t2.mustBlock("X(a)")
	for _, s := range []*session{t1, t2} {
		name := map[*session]string{t1: "X(b)", t2: "X(a)"}[s]
		if r := s.awaitStep(name); !errors.Is(r.err, txkv.ErrLockTimeout) {
			t.Fatalf("%s %s with detection off = %v, want ErrLockTimeout", s.name, name, r.err)
		}
	}
	wantNoWaiters(t, db)
	sc.finish()
	if s := db.Stats(); s.Deadlocks != 0 || s.LockTimeouts != 2 || db.LastDeadlock() != nil {
		t.Fatalf("Stats: %d deadlocks, %d lock timeouts, LastDeadlock %v; want 0, 2, nil",
			s.Deadlocks, s.LockTimeouts, db.LastDeadlock())
	}
}

// LastDeadlock is nil until a deadlock happens, then always the latest one
// (InnoDB's LATEST DETECTED DEADLOCK); TxOptions.Label names the
// transactions in Locks() — holders and waiters — and in the report.
func TestLastDeadlockAndLabels(t *testing.T) {
	db := openMem(t, specOptions())
	if db.LastDeadlock() != nil {
		t.Fatal("LastDeadlock() on a new DB is not nil")
	}
	cross := func(label1, label2, k1, k2 string) *txkv.DeadlockError {
		sc := newSched(t, db)
		t1, t2 := sc.begin(label1, specOpts(optimisticSerializable, label1)), sc.begin(label2, specOpts(optimisticSerializable, label2))
		t1.do("X("+k1+")", lockKey(txkv.Exclusive, k1))
		t2.do("X("+k2+")", lockKey(txkv.Exclusive, k2))
		t1.do("X("+k2+")", lockKey(txkv.Exclusive, k2))
		t1.mustBlock("X(" + k2 + ")")
		// Locks() shows the labels of holders and waiters.
		wantLocks(t, db,
			`"`+k1+`": `+label1+` X granted`,
			`"`+k2+`": `+label2+` X granted`,
			`"`+k2+`": `+label1+` X waiting`)
		t2.do("X("+k1+")", lockKey(txkv.Exclusive, k1))
		r := t2.awaitStep("X(" + k1 + ")")
		de := wantDeadlock(t, r.err, 2, t1, t2)
		for _, l := range []string{label1, label2} {
			if !strings.Contains(de.Error(), `"`+l+`"`) || de.Labels[t1.tx.ID()] != label1 {
				t.Fatalf("deadlock report lacks label %q: %v (labels %v)", l, de, de.Labels)
			}
		}
		t1.awaitStep("X(" + k2 + ")")
		t1.commit()
		sc.finish()
		return de
	}
	first := cross("transfer-1", "transfer-2", "acct/a", "acct/b")
	if last := db.LastDeadlock(); last == nil || last.Victim != first.Victim {
		t.Fatalf("LastDeadlock() = %v, want the first deadlock", last)
	}
	second := cross("booking-1", "booking-2", "room/c", "room/d")
	last := db.LastDeadlock()
	if last == nil || last.Victim != second.Victim || last.Victim == first.Victim {
		t.Fatalf("LastDeadlock() = %v, want the second deadlock (victim %d)", last, second.Victim)
	}
	for _, e := range last.Cycle {
		if k := string(e.Key); k != "room/c" && k != "room/d" {
			t.Fatalf("LastDeadlock() names %q: it is not the latest deadlock: %v", k, last)
		}
	}
	if !strings.Contains(last.Error(), `"booking-1"`) || strings.Contains(last.Error(), "transfer") {
		t.Fatalf("LastDeadlock() message = %q", last.Error())
	}
	if n := db.Stats().Deadlocks; n != 2 {
		t.Fatalf("Stats().Deadlocks = %d, want 2", n)
	}
}

// A label is forgotten when its transaction ends, whether or not the
// transaction took a lock: 30,000 labelled transactions that only read
// (optimistically, so without locks) must not leave 30,000 labels behind
// in the lock manager. The lock manager's table is not visible from here,
// so the test weighs the heap: a leak of one small record per transaction
// is about 1.4 MB; the allowance is a third of that.
func TestLabelsOfLockFreeTransactionsAreForgotten(t *testing.T) {
	const n, allowance = 30000, 512 << 10
	db := openMem(t, nil)
	mustPut(t, db, "k", "v")
	run := func(n int) {
		for range n {
			tx := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Optimistic, Label: "reader"})
			if _, err := tx.Get([]byte("k")); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		}
	}
	run(1000) // warm up pools and maps
	before := heapAlloc()
	run(n)
	after := heapAlloc()
	t.Logf("heap %d → %d bytes after %d labelled lock-free transactions", before, after, n)
	if after > before+allowance {
		t.Fatalf("the heap grew by %d bytes over %d finished transactions: their labels leak", after-before, n)
	}
}

func heapAlloc() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
