package txkv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// PostgreSQL's isolation-tester specs (src/test/isolation/specs), as
// translated to keys in shared/SCENARIOS.md, run through the public API:
// each is one fixed permutation driven by sched (sched_test.go), which
// learns that a step blocks by polling db.Locks(), never by sleeping. The
// trace (every step, its outcome and, at the interesting points, the lock
// table as Locks() shows it) is printed with -v or on failure.
//
// The lockmgr package runs the same scenarios against the bare lock table;
// these check the whole path: Tx methods, lock options, the rollback of a
// deadlock victim releasing its locks, Locks(), LastDeadlock() and Stats().
// Explicit locks behave the same under every strategy, so each spec runs
// over all eight modes.

// specOptions: no lock timeout, so only the lock manager's own decisions
// (grant, deadlock, NOWAIT) end a wait; a hang is caught by sched's limit.
func specOptions() *txkv.Options {
	o := txkv.DefaultOptions()
	o.LockTimeout = txkv.Forever
	return o
}

// specOpts are m's options labelled name, so Locks() and deadlock reports
// name the session.
func specOpts(m mode, name string) *txkv.TxOptions {
	o := m.TxOptions()
	o.Label = name
	return o
}

// lockKey is the step "SELECT … FOR SHARE / FOR UPDATE" of key; an absent
// key is locked all the same and is not an error here.
func lockKey(m txkv.LockMode, key string, opts ...txkv.LockOption) func(*txkv.Tx) error {
	return func(tx *txkv.Tx) error {
		var err error
		if m == txkv.Shared {
			_, err = tx.GetForShare([]byte(key), opts...)
		} else {
			_, err = tx.GetForUpdate([]byte(key), opts...)
		}
		if errors.Is(err, txkv.ErrNotFound) {
			return nil
		}
		return err
	}
}

func rollbackStep(tx *txkv.Tx) error { return tx.Rollback() }

// awaitStep waits until step name of s has ended (typically after it
// blocked and something released it) and returns its result.
func (s *session) awaitStep(name string) schedResult {
	s.sc.t.Helper()
	r := s.Await(name)
	return schedResult{err: r.Err, skipped: r.Skipped}
}

// schedResult is a step's outcome, as awaitStep returns it.
type schedResult struct {
	err     error
	skipped bool
}

// tryStep issues a step whose error does not end the session — NOWAIT and
// lock timeouts fail only the request, the transaction stays usable — and
// returns that error once the step has ended. sched ends a session at its
// first error, so the step reports success to sched and the real outcome is
// logged in the trace on the next line.
func (s *session) tryStep(name string, f func(*txkv.Tx) error) error {
	s.sc.t.Helper()
	var err error
	s.do(name, func(tx *txkv.Tx) error { err = f(tx); return nil })
	s.awaitStep(name) // the result's arrival orders the write of err before this read
	s.sc.logf("%s: %s returned %v (the transaction stays usable)", s.name, name, errOrOK(err))
	return err
}

func errOrOK(err error) any {
	if err == nil {
		return "ok"
	}
	return err
}

// mustNotBlock fails unless step name of s ended without waiting for a lock.
func (s *session) mustNotBlock(name string) {
	s.sc.t.Helper()
	if s.blockedIn(name) {
		s.sc.t.Fatalf("%s: %s waited for a lock; it must not", s.name, name)
	}
	if !s.Ended(name) {
		s.sc.t.Fatalf("%s: %s has not ended", s.name, name)
	}
}

// mustBlock fails unless step name of s is waiting for a lock.
func (s *session) mustBlock(name string) {
	s.sc.t.Helper()
	if !s.blockedIn(name) {
		s.sc.t.Fatalf("%s: %s did not wait for a lock (result %v)", s.name, name, s.Err(name))
	}
}

// lockTable renders db.Locks() one row per line, naming transactions by
// their label: `"k": T1 X granted`, `["a","c"): T2 S waiting`.
func lockTable(db *txkv.DB) []string {
	var out []string
	for _, l := range db.Locks() {
		who := l.Label
		if who == "" {
			who = fmt.Sprintf("tx%d", l.TxID)
		}
		target := fmt.Sprintf("%q", l.Key)
		if l.Range {
			target = fmt.Sprintf("[%q,%q)", l.Key, l.End)
		}
		m := map[txkv.LockMode]string{txkv.Shared: "S", txkv.Exclusive: "X"}[l.Mode]
		state := "waiting"
		if l.Granted {
			state = "granted"
		}
		out = append(out, fmt.Sprintf("%s: %s %s %s", target, who, m, state))
	}
	return out
}

// logLocks adds the lock table to the trace.
func (sc *sched) logLocks(when string) {
	rows := lockTable(sc.db)
	if len(rows) == 0 {
		rows = []string{"(none)"}
	}
	sc.logf("locks %s:\n      %s", when, strings.Join(rows, "\n      "))
}

// wantLocks compares the lock table with want, row for row.
func wantLocks(t *testing.T, db *txkv.DB, want ...string) {
	t.Helper()
	if got := lockTable(db); !slices.Equal(got, want) {
		t.Fatalf("Locks():\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// wantNoTrace fails if transaction id appears in the lock table or in the
// wait-for graph.
func wantNoTrace(t *testing.T, db *txkv.DB, id uint64) {
	t.Helper()
	for _, l := range db.Locks() {
		if l.TxID == id {
			t.Fatalf("tx %d left %+v in Locks()", id, l)
		}
	}
	var dot bytes.Buffer
	if err := db.WriteWaitForGraph(&dot); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(dot.String(), fmt.Sprintf("t%d ", id)) {
		t.Fatalf("tx %d left a node in the wait-for graph:\n%s", id, dot.String())
	}
}

// wantNoWaiters fails if anyone waits for a lock.
func wantNoWaiters(t *testing.T, db *txkv.DB) {
	t.Helper()
	for _, l := range db.Locks() {
		if !l.Granted {
			t.Fatalf("tx %d (%s) still waits: %v", l.TxID, l.Label, lockTable(db))
		}
	}
}

// wantDeadlock checks that err is a *DeadlockError whose cycle has n edges,
// chains waiter → holder → … back to the first waiter through members only,
// names keys and modes, and mentions every member's label in its message.
func wantDeadlock(t *testing.T, err error, n int, members ...*session) *txkv.DeadlockError {
	t.Helper()
	var de *txkv.DeadlockError
	if !errors.As(err, &de) || !errors.Is(err, txkv.ErrDeadlock) {
		t.Fatalf("error %v is not a *DeadlockError", err)
	}
	ids := map[uint64]*session{}
	for _, s := range members {
		ids[s.tx.ID()] = s
	}
	if len(de.Cycle) != n {
		t.Fatalf("deadlock cycle has %d edges, want %d: %v", len(de.Cycle), n, de)
	}
	for i, e := range de.Cycle {
		next := de.Cycle[(i+1)%n]
		if e.Holder != next.Waiter {
			t.Fatalf("cycle edge %d (%v) does not lead to edge %d (%v)", i, e, i+1, next)
		}
		if ids[e.Waiter] == nil || len(e.Key) == 0 || e.Mode != txkv.Exclusive && e.Mode != txkv.Shared {
			t.Fatalf("cycle edge %v: waiter outside the schedule, or no key or mode", e)
		}
	}
	if ids[de.Victim] == nil {
		t.Fatalf("victim %d is not one of the sessions", de.Victim)
	}
	msg := de.Error()
	for _, e := range de.Cycle {
		if s := ids[e.Waiter]; !strings.Contains(msg, fmt.Sprintf("%q", s.name)) {
			t.Fatalf("deadlock message lacks the label %q: %s", s.name, msg)
		}
	}
	return de
}

// ---- deadlock-simple (SCENARIOS 1) --------------------------------------

func TestSpecDeadlockSimple(t *testing.T) { forModes(t, allModes, testSpecDeadlockSimple) }

// T1 S(a); T2 S(a); T1 X(a) ⏳; T2 X(a) → exactly one ✗Dl at once, naming
// the 2-edge upgrade cycle on "a"; the other's upgrade completes once the
// victim has rolled back.
func testSpecDeadlockSimple(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	mustPut(t, db, "a", "0")
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	t1.do("S(a)", lockKey(txkv.Shared, "a"))
	t2.do("S(a)", lockKey(txkv.Shared, "a"))
	t1.do("X(a)", lockKey(txkv.Exclusive, "a"))
	t1.mustBlock("X(a)")
	sc.logLocks("before T2 closes the cycle")
	t2.do("X(a)", lockKey(txkv.Exclusive, "a"))
	r1, r2 := t1.awaitStep("X(a)"), t2.awaitStep("X(a)")
	sc.logLocks("after the victim rolled back")
	t1.commit()
	t2.commit()
	sc.finish()

	if (r1.err == nil) == (r2.err == nil) {
		t.Fatalf("T1 X(a) = %v, T2 X(a) = %v: want exactly one deadlock victim", r1.err, r2.err)
	}
	victim, survivor, err := t2, t1, r2.err
	if r1.err != nil {
		victim, survivor, err = t1, t2, r1.err
	}
	de := wantDeadlock(t, err, 2, t1, t2)
	if de.Victim != victim.tx.ID() {
		t.Fatalf("DeadlockError.Victim %d, but %s (tx %d) got the error", de.Victim, victim.name, victim.tx.ID())
	}
	for _, e := range de.Cycle {
		if string(e.Key) != "a" || e.Mode != txkv.Exclusive {
			t.Fatalf("cycle edge %v: want X on \"a\"", e)
		}
	}
	if !survivor.committed() {
		t.Fatalf("%s did not complete after the victim rolled back: %v", survivor.name, survivor.failure())
	}
	if last := db.LastDeadlock(); last == nil || last.Victim != de.Victim {
		t.Fatalf("LastDeadlock() = %v, want the reported deadlock", last)
	}
	if s := db.Stats(); s.Deadlocks != 1 {
		t.Fatalf("Stats().Deadlocks = %d, want 1", s.Deadlocks)
	}
	wantLocks(t, db)
}

// ---- deadlock-hard (SCENARIOS 2) ----------------------------------------

func TestSpecDeadlockHard(t *testing.T) {
	forModes(t, allModes, func(t *testing.T, m mode) {
		t.Run("youngest-closes", func(t *testing.T) { testSpecDeadlockHard(t, m, false) })
		t.Run("oldest-closes", func(t *testing.T) { testSpecDeadlockHard(t, m, true) })
	})
}

// The 8-ring: Ti X(ai) for i=1..8; then each Ti asks X(a(i+1)) and the last
// request closes the ring. Exactly one transaction is the victim (the
// youngest, T8, as PostgreSQL's requester is in its spec); then the rest
// complete in a cascade, each only when the one it waits for commits.
// oldestCloses runs T2..T8's requests first and lets T1 close the ring, so
// the victim is a waiter other than the requester: its own blocked call
// returns the error.
func testSpecDeadlockHard(t *testing.T, m mode, oldestCloses bool) {
	const n = 8
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	ss := make([]*session, n)
	key := func(i int) string { return fmt.Sprintf("a%d", i%n+1) }
	for i := range ss {
		name := fmt.Sprintf("T%d", i+1)
		ss[i] = sc.begin(name, specOpts(m, name))
	}
	for i, s := range ss {
		s.do("X("+key(i)+")", lockKey(txkv.Exclusive, key(i)))
	}
	order := make([]int, 0, n) // who asks for the next key, in order
	for i := range n {
		order = append(order, i)
	}
	if oldestCloses {
		order = append(order[1:], 0)
	}
	step := func(i int) string { return "X(" + key(i+1) + ")" }
	for _, i := range order[:n-1] {
		ss[i].do(step(i), lockKey(txkv.Exclusive, key(i+1)))
		ss[i].mustBlock(step(i))
	}
	sc.logLocks("before the ring closes")
	closer := order[n-1]
	ss[closer].do(step(closer), lockKey(txkv.Exclusive, key(closer+1)))

	// T8 is the youngest: the victim whoever closed the ring.
	victim := ss[n-1]
	r := victim.awaitStep(step(n - 1))
	de := wantDeadlock(t, r.err, n, ss...)
	if de.Victim != victim.tx.ID() {
		t.Fatalf("victim tx %d, want the youngest, T8 (tx %d)", de.Victim, victim.tx.ID())
	}
	sc.logLocks("after T8 rolled back")
	// The cascade: T7 gets a8 (T8's), commits, T6 gets a7, and so on. While
	// Ti runs, every Tj with j < i still waits: nobody else was aborted.
	for i := n - 2; i >= 0; i-- {
		if r := ss[i].awaitStep(step(i)); r.err != nil {
			t.Fatalf("%s: %s = %v, want it granted after T%d ended", ss[i].name, step(i), r.err, i+2)
		}
		for j := range i {
			if !isWaiting(db, ss[j].tx.ID()) {
				t.Fatalf("%s stopped waiting before T%d committed", ss[j].name, j+2)
			}
		}
		ss[i].commit()
	}
	sc.finish()
	if s := db.Stats(); s.Deadlocks != 1 {
		t.Fatalf("Stats().Deadlocks = %d, want exactly one victim", s.Deadlocks)
	}
	for _, s := range ss[:n-1] {
		if !s.committed() {
			t.Fatalf("%s did not commit: %v", s.name, s.failure())
		}
	}
	wantLocks(t, db)
}

// A deadlock through a range lock: T1 X(b); T2 X(d); T1 X(d) ⏳; T2 LockRange
// [a,c) X, which covers T1's b → ✗Dl for T2, whose cycle edge names the
// range (Key a, End c, Range), not a point.
func TestSpecDeadlockThroughRange(t *testing.T) { forModes(t, allModes, testSpecDeadlockRange) }

func testSpecDeadlockRange(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	t1.do("X(b)", lockKey(txkv.Exclusive, "b"))
	t2.do("X(d)", lockKey(txkv.Exclusive, "d"))
	t1.do("X(d)", lockKey(txkv.Exclusive, "d"))
	t1.mustBlock("X(d)")
	t2.do("X[a,c)", func(tx *txkv.Tx) error { return tx.LockRange([]byte("a"), []byte("c"), txkv.Exclusive) })
	de := wantDeadlock(t, t2.awaitStep("X[a,c)").err, 2, t1, t2)
	var rangeEdge bool
	for _, e := range de.Cycle {
		if e.Waiter == t2.tx.ID() {
			rangeEdge = e.Range && string(e.Key) == "a" && string(e.End) == "c" && e.Holder == t1.tx.ID()
		}
	}
	if !rangeEdge || !strings.Contains(de.Error(), `"a"`) {
		t.Fatalf("T2's cycle edge does not name the range [a,c): %v", de)
	}
	if r := t1.awaitStep("X(d)"); r.err != nil {
		t.Fatalf("T1 X(d) after T2 was aborted = %v", r.err)
	}
	t1.commit()
	sc.finish()
	wantLocks(t, db)
}

// ---- deadlock-soft (SCENARIOS 3) and deadlock-soft-2 (SCENARIOS 4) -------

func TestSpecDeadlockSoft(t *testing.T) { forModes(t, allModes, testSpecDeadlockSoft) }

// D1 S(a1); D2 S(a2); E1 X(a1) ⏳; E2 X(a2) ⏳; D1 S(a2) ⏳ (queued behind
// E2); D2 S(a1): a cycle only through queue order. PostgreSQL reorders and
// nobody aborts; txkv must at least never hang and abort at most one. The
// commits are issued in the spec's order, each queued behind its session's
// blocked step: d1c e1c d2c e2c.
func testSpecDeadlockSoft(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	d1, d2 := sc.begin("D1", specOpts(m, "D1")), sc.begin("D2", specOpts(m, "D2"))
	e1, e2 := sc.begin("E1", specOpts(m, "E1")), sc.begin("E2", specOpts(m, "E2"))
	d1.do("S(a1)", lockKey(txkv.Shared, "a1"))
	d2.do("S(a2)", lockKey(txkv.Shared, "a2"))
	e1.do("X(a1)", lockKey(txkv.Exclusive, "a1"))
	e2.do("X(a2)", lockKey(txkv.Exclusive, "a2"))
	d1.do("S(a2)", lockKey(txkv.Shared, "a2"))
	e1.mustBlock("X(a1)")
	e2.mustBlock("X(a2)")
	d1.mustBlock("S(a2)")
	d2.do("S(a1)", lockKey(txkv.Shared, "a1"))
	sc.logLocks("after D2 S(a1)")
	d1.commit()
	e1.commit()
	d2.commit()
	e2.commit()
	sc.finish()
	wantAtMostOneVictim(t, db, d1, d2, e1, e2)
}

func TestSpecDeadlockSoft2(t *testing.T) { forModes(t, allModes, testSpecDeadlockSoft2) }

// T1 X(j); T2 S(k); T3, T4 X(k) ⏳; T2 S(j) ⏳; T1 S(k): T1 → T4 → T3 → T2 →
// T1 through queue order only. No hang, at most one victim.
func testSpecDeadlockSoft2(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	var ss []*session
	for i := 1; i <= 4; i++ {
		name := fmt.Sprintf("T%d", i)
		ss = append(ss, sc.begin(name, specOpts(m, name)))
	}
	t1, t2, t3, t4 := ss[0], ss[1], ss[2], ss[3]
	t1.do("X(j)", lockKey(txkv.Exclusive, "j"))
	t2.do("S(k)", lockKey(txkv.Shared, "k"))
	t3.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t4.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t2.do("S(j)", lockKey(txkv.Shared, "j"))
	t3.mustBlock("X(k)")
	t4.mustBlock("X(k)")
	t2.mustBlock("S(j)")
	t1.do("S(k)", lockKey(txkv.Shared, "k"))
	sc.logLocks("after T1 S(k)")
	for _, s := range ss {
		s.commit()
	}
	sc.finish()
	wantAtMostOneVictim(t, db, ss...)
}

// wantAtMostOneVictim: every session either committed or was the one
// deadlock victim, and the lock table is empty.
func wantAtMostOneVictim(t *testing.T, db *txkv.DB, ss ...*session) {
	t.Helper()
	victims := 0
	for _, s := range ss {
		if s.committed() {
			continue
		}
		if err := s.failure(); !errors.Is(err, txkv.ErrDeadlock) {
			t.Fatalf("%s ended with %v, want commit (or being the one deadlock victim)", s.name, err)
		}
		victims++
	}
	if victims > 1 || db.Stats().Deadlocks > 1 {
		t.Fatalf("%d victims (Stats().Deadlocks %d), want at most one", victims, db.Stats().Deadlocks)
	}
	t.Logf("%d victim(s)", victims)
	wantLocks(t, db)
}

// ---- nowait-3 (SCENARIOS 7) and lock-nowait (SCENARIOS 8) ----------------

func TestSpecNowait3(t *testing.T) { forModes(t, allModes, testSpecNowait3) }

// T1 X(k); T2 X(k) ⏳; T3 X(k) NOWAIT → ✗NA at once, without enqueuing:
// Locks() is the same before and after, and T3 stays usable. T1 C → T2 ✓.
// The same for S(k) NOWAIT (S is compatible with nobody here, and must not
// barge past T2's queued X either).
func testSpecNowait3(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	t1, t2, t3 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2")), sc.begin("T3", specOpts(m, "T3"))
	t1.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t2.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t2.mustBlock("X(k)")
	before := db.Locks()
	sc.logLocks("before the NOWAITs")
	waits := db.Stats().LockWaits
	errX := t3.tryStep("X(k) NOWAIT", lockKey(txkv.Exclusive, "k", txkv.NoWait()))
	errS := t3.tryStep("S(k) NOWAIT", lockKey(txkv.Shared, "k", txkv.NoWait()))
	t3.mustNotBlock("X(k) NOWAIT")
	t3.mustNotBlock("S(k) NOWAIT")
	for name, err := range map[string]error{"X": errX, "S": errS} {
		if !errors.Is(err, txkv.ErrLockNotAvailable) {
			t.Fatalf("T3 %s(k) NOWAIT behind a queue = %v, want ErrLockNotAvailable", name, err)
		}
	}
	if after := db.Locks(); !slices.EqualFunc(before, after, sameLockInfo) {
		t.Fatalf("NOWAIT changed the lock table:\nbefore %v\nafter  %v", before, after)
	}
	if s := db.Stats(); s.LockWaits != waits || s.NotAvailable < 2 {
		t.Fatalf("Stats LockWaits %d → %d (want unchanged), NotAvailable %d (want ≥ 2)", waits, s.LockWaits, s.NotAvailable)
	}
	t3.do("X(other)", lockKey(txkv.Exclusive, "other"))
	t3.mustNotBlock("X(other)")
	t1.commit()
	if r := t2.awaitStep("X(k)"); r.err != nil {
		t.Fatalf("T2 X(k) after T1 committed = %v", r.err)
	}
	sc.logLocks("after T1 committed")
	t2.commit()
	t3.commit()
	sc.finish()
	for _, s := range []*session{t1, t2, t3} {
		if !s.committed() {
			t.Fatalf("%s did not commit: %v", s.name, s.failure())
		}
	}
}

func sameLockInfo(a, b txkv.LockInfo) bool {
	return a.TxID == b.TxID && a.Label == b.Label && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.End, b.End) &&
		a.Range == b.Range && a.Mode == b.Mode && a.Granted == b.Granted && a.Since.Equal(b.Since)
}

func TestSpecLockNowait(t *testing.T) { forModes(t, allModes, testSpecLockNowait) }

// Re-entrant NOWAIT: T1 X(k); T2 X(k) ⏳; T1 S(k) NOWAIT and X(k) NOWAIT → ✓
// at once (no conflict with itself, whatever waits behind it), adding
// nothing to Locks(). T1 C → T2 ✓.
func testSpecLockNowait(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	t1.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t2.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t2.mustBlock("X(k)")
	t1.do("S(k) NOWAIT", lockKey(txkv.Shared, "k", txkv.NoWait()))
	t1.do("X(k) NOWAIT", lockKey(txkv.Exclusive, "k", txkv.NoWait()))
	t1.mustNotBlock("S(k) NOWAIT")
	t1.mustNotBlock("X(k) NOWAIT")
	wantLocks(t, db, `"k": T1 X granted`, `"k": T2 X waiting`)
	t1.commit()
	t2.awaitStep("X(k)")
	t2.commit()
	sc.finish()
	if !t1.committed() || !t2.committed() {
		t.Fatalf("T1 %v, T2 %v: both must commit", t1.failure(), t2.failure())
	}
}

// ---- skip-locked (SCENARIOS 9, 10, 11) ----------------------------------

// claimFirst is "SELECT the first row FOR UPDATE SKIP LOCKED LIMIT 1" of
// the queue q/; it stores the key it got ("none" if every row is locked).
func claimFirst(got *string) func(*txkv.Tx) error {
	return func(tx *txkv.Tx) error {
		kvs, err := tx.ScanForUpdate([]byte("q/"), []byte("q0"), 1, txkv.SkipLocked())
		*got = "none"
		if len(kvs) > 0 {
			*got = string(kvs[0].Key)
		}
		return err
	}
}

func seedQueue(t *testing.T, db *txkv.DB, n int) {
	for i := 1; i <= n; i++ {
		mustPut(t, db, fmt.Sprintf("q/%d", i), "job")
	}
}

// claim runs claimFirst as step name of s, checks it did not wait, and
// returns (and traces) the key it got.
func (s *session) claim(name string) string {
	s.sc.t.Helper()
	var got string
	s.do(name, claimFirst(&got))
	s.mustNotBlock(name)
	if err := s.err(name); err != nil {
		s.sc.t.Fatalf("%s: %s: %v", s.name, name, err)
	}
	s.sc.logf("%s: %s got %s", s.name, name, got)
	return got
}

func TestSpecSkipLocked(t *testing.T) { forModes(t, allModes, testSpecSkipLocked) }

// Each session takes "the first row FOR UPDATE SKIP LOCKED" twice: its own
// lock never makes it skip. T1 → 1, T1 → 1, T2 → 2; T1 C; T2 → 1.
func testSpecSkipLocked(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	seedQueue(t, db, 4)
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	got := []string{t1.claim("first#1"), t1.claim("first#2"), t2.claim("first#1")}
	t1.commit()
	got = append(got, t2.claim("first#2"))
	sc.logLocks("at the end")
	wantLocks(t, db, `"q/1": T2 X granted`, `"q/2": T2 X granted`)
	t2.commit()
	sc.finish()
	if want := []string{"q/1", "q/1", "q/2", "q/1"}; !slices.Equal(got, want) {
		t.Fatalf("claims %v, want %v", got, want)
	}
	if !t1.committed() || !t2.committed() {
		t.Fatalf("T1 %v, T2 %v: both must commit", t1.failure(), t2.failure())
	}
}

func TestSpecSkipLocked2(t *testing.T) { forModes(t, allModes, testSpecSkipLocked2) }

// T1 and T2 share S(q/1); T2's "X SKIP LOCKED LIMIT 1" skips q/1 (its own S
// cannot become X while T1 shares it) and gets q/2.
func testSpecSkipLocked2(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	seedQueue(t, db, 3)
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	t1.do("S(q/1)", lockKey(txkv.Shared, "q/1"))
	t2.do("S(q/1)", lockKey(txkv.Shared, "q/1"))
	if got := t2.claim("first"); got != "q/2" {
		t.Fatalf("T2 claimed %s, want q/2", got)
	}
	wantLocks(t, db, `"q/1": T1 S granted`, `"q/1": T2 S granted`, `"q/2": T2 X granted`)
	t1.commit()
	t2.commit()
	sc.finish()
}

func TestSpecSkipLocked3(t *testing.T) { forModes(t, allModes, testSpecSkipLocked3) }

// A key with a queued waiter is skipped: T1 X(q/1); T2 X(q/1) ⏳; T3 "X SK
// LIMIT 1" → q/2 without blocking (and without barging ahead of T2). T1 C →
// T2 ✓.
func testSpecSkipLocked3(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	seedQueue(t, db, 3)
	sc := newSched(t, db)
	t1, t2, t3 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2")), sc.begin("T3", specOpts(m, "T3"))
	t1.do("X(q/1)", lockKey(txkv.Exclusive, "q/1"))
	t2.do("X(q/1)", lockKey(txkv.Exclusive, "q/1"))
	t2.mustBlock("X(q/1)")
	waits := db.Stats().LockWaits
	if got := t3.claim("first"); got != "q/2" {
		t.Fatalf("T3 claimed %s, want q/2", got)
	}
	if w := db.Stats().LockWaits; w != waits {
		t.Fatalf("SKIP LOCKED waited: Stats().LockWaits %d → %d", waits, w)
	}
	sc.logLocks("after T3's claim")
	t1.commit()
	if r := t2.awaitStep("X(q/1)"); r.err != nil {
		t.Fatalf("T2 X(q/1) after T1 committed = %v", r.err)
	}
	wantLocks(t, db, `"q/1": T2 X granted`, `"q/2": T3 X granted`)
	t2.commit()
	t3.commit()
	sc.finish()
}

// ---- timeouts (SCENARIOS 12) --------------------------------------------

// The timeouts are idle waits: the modes run in parallel.
func TestSpecTimeouts(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			testSpecTimeouts(t, m)
		})
	}
}

// T1 holds X(k); T2 X(k) with WaitTimeout(100ms) → ✗TO, not before 100ms,
// leaving no trace in Locks() or the wait-for graph; T2 stays usable. Then
// the contest between a lock timeout and the Begin ctx's deadline: whichever
// is shorter fires, each with its own error (TestLockTimeoutLeavesTransaction
// Usable covers the DB-wide Options.LockTimeout).
func testSpecTimeouts(t *testing.T, m mode) {
	const lockTimeout = 100 * time.Millisecond
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	t1.do("X(k)", lockKey(txkv.Exclusive, "k"))
	var waited time.Duration
	err := t2.tryStep("X(k) timeout 100ms", func(tx *txkv.Tx) error {
		start := time.Now()
		err := lockKey(txkv.Exclusive, "k", txkv.WaitTimeout(lockTimeout))(tx)
		waited = time.Since(start)
		return err
	})
	t2.mustBlock("X(k) timeout 100ms")
	if !errors.Is(err, txkv.ErrLockTimeout) {
		t.Fatalf("T2 X(k) with a 100ms timeout = %v, want ErrLockTimeout", err)
	}
	if waited < lockTimeout {
		t.Fatalf("the timeout fired after %v, before the 100ms asked for", waited)
	}
	sc.logf("T2 waited %v", waited.Round(time.Millisecond))
	sc.logLocks("after the timeout")
	wantLocks(t, db, `"k": T1 X granted`)
	wantNoTrace(t, db, t2.tx.ID())
	t2.do("X(j)", lockKey(txkv.Exclusive, "j")) // still usable
	t2.mustNotBlock("X(j)")

	// The ctx deadline is shorter than the lock timeout: the ctx error, and
	// (the Tx being bound to its ctx) the transaction is rolled back.
	ctx, cancel := context.WithTimeout(bg, lockTimeout)
	defer cancel()
	opts := specOpts(m, "T3")
	opts.LockTimeout = 10 * time.Second
	t3, err := db.Begin(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	waits := db.Stats().LockWaits
	if _, err := t3.GetForUpdate([]byte("k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("T3 X(k): ctx deadline 100ms, lock timeout 10s = %v, want context.DeadlineExceeded", err)
	}
	if db.Stats().LockWaits == waits {
		t.Fatal("T3's deadline fired before it queued: the test did not exercise a wait")
	}
	wantNoTrace(t, db, t3.ID())
	if err := t3.Put([]byte("x"), nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("T3 after its deadline = %v, want context.DeadlineExceeded (rolled back)", err)
	}

	// The lock timeout is shorter than the ctx deadline: the lock timeout.
	ctx4, cancel4 := context.WithTimeout(bg, 10*time.Second)
	defer cancel4()
	t4, err := db.Begin(ctx4, specOpts(m, "T4"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = t4.Rollback() }()
	if _, err := t4.GetForUpdate([]byte("k"), txkv.WaitTimeout(lockTimeout)); !errors.Is(err, txkv.ErrLockTimeout) {
		t.Fatalf("T4 X(k): lock timeout 100ms, ctx deadline 10s = %v, want ErrLockTimeout", err)
	}
	wantNoTrace(t, db, t4.ID())

	// TxOptions.LockTimeout bounds every wait of the transaction, the
	// implicit ones too (a pessimistic write, an optimistic commit).
	opts5 := specOpts(m, "T5")
	opts5.LockTimeout = lockTimeout
	t5 := mustBegin(t, db, opts5)
	defer func() { _ = t5.Rollback() }()
	err = t5.Put([]byte("k"), []byte("t5"))
	if err == nil {
		err = t5.Commit()
	}
	if !errors.Is(err, txkv.ErrLockTimeout) {
		t.Fatalf("T5 write of k, TxOptions.LockTimeout 100ms = %v, want ErrLockTimeout", err)
	}
	wantNoTrace(t, db, t5.ID())
	t1.commit()
	t2.commit()
	sc.finish()
	if !t1.committed() || !t2.committed() {
		t.Fatalf("T1 %v, T2 %v: both must commit", t1.failure(), t2.failure())
	}
	if s := db.Stats(); s.LockTimeouts < 3 {
		t.Fatalf("Stats().LockTimeouts = %d, want ≥ 3", s.LockTimeouts)
	}
}

// ---- tuplelock-upgrade-no-deadlock (SCENARIOS 13) -----------------------

func TestSpecTuplelockUpgradeNoDeadlock(t *testing.T) {
	forModes(t, allModes, testSpecTuplelockUpgrade)
}

// Two pictures. "shared-first" is the spec's holder/waiter picture: T1 and
// T3 share k, T2 waits for X; T3's upgrade goes ahead of T2 and waits for T1
// only; T1 rolls back → T3 gets X before T2, no deadlock anywhere; T2 gets X
// after T3 ends. "spec-order" issues the spec's steps literally: T3's S(k)
// comes after T2 queued X, and txkv's strict FIFO (no barging past an X
// waiter, architecture §4) queues it — PostgreSQL's row locks would grant it — so
// T2 goes first; still no deadlock and everyone finishes.
func testSpecTuplelockUpgrade(t *testing.T, m mode) {
	t.Run("shared-first", func(t *testing.T) {
		db := openMem(t, specOptions())
		sc := newSched(t, db)
		t1, t2, t3 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2")), sc.begin("T3", specOpts(m, "T3"))
		t1.do("S(k)", lockKey(txkv.Shared, "k"))
		t3.do("S(k)", lockKey(txkv.Shared, "k"))
		t2.do("X(k)", lockKey(txkv.Exclusive, "k"))
		t3.do("X(k)", lockKey(txkv.Exclusive, "k"))
		t2.mustBlock("X(k)")
		t3.mustBlock("X(k)")
		wantLocks(t, db, `"k": T1 S granted`, `"k": T3 S granted`, `"k": T3 X waiting`, `"k": T2 X waiting`)
		t1.do("rollback", rollbackStep)
		if r := t3.awaitStep("X(k)"); r.err != nil {
			t.Fatalf("T3's upgrade after T1 rolled back = %v", r.err)
		}
		sc.logLocks("after T1 rolled back")
		wantLocks(t, db, `"k": T3 X granted`, `"k": T2 X waiting`)
		t3.commit()
		if r := t2.awaitStep("X(k)"); r.err != nil {
			t.Fatalf("T2 X(k) after T3 committed = %v", r.err)
		}
		t2.commit()
		sc.finish()
		wantNoDeadlocks(t, db, t2, t3)
	})
	t.Run("spec-order", func(t *testing.T) {
		db := openMem(t, specOptions())
		sc := newSched(t, db)
		t1, t2, t3 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2")), sc.begin("T3", specOpts(m, "T3"))
		t1.do("S(k)", lockKey(txkv.Shared, "k"))
		t2.do("X(k)", lockKey(txkv.Exclusive, "k"))
		t3.do("S(k)", lockKey(txkv.Shared, "k"))
		t3.do("X(k)", lockKey(txkv.Exclusive, "k")) // queued in the session behind S(k)
		t2.mustBlock("X(k)")
		t3.mustBlock("S(k)")
		wantLocks(t, db, `"k": T1 S granted`, `"k": T2 X waiting`, `"k": T3 S waiting`)
		t1.do("rollback", rollbackStep)
		if r := t2.awaitStep("X(k)"); r.err != nil {
			t.Fatalf("T2 X(k) after T1 rolled back = %v", r.err)
		}
		t2.commit()
		t3.awaitStep("X(k)")
		t3.commit()
		sc.finish()
		wantNoDeadlocks(t, db, t2, t3)
	})
}

func wantNoDeadlocks(t *testing.T, db *txkv.DB, committed ...*session) {
	t.Helper()
	for _, s := range committed {
		if !s.committed() {
			t.Fatalf("%s did not commit: %v", s.name, s.failure())
		}
	}
	if n := db.Stats().Deadlocks; n != 0 || db.LastDeadlock() != nil {
		t.Fatalf("Stats().Deadlocks = %d, LastDeadlock %v: want no deadlock", n, db.LastDeadlock())
	}
	wantLocks(t, db)
}

// ---- upgrade ahead of a waiter (SCENARIOS 14) ---------------------------

func TestSpecUpgradeAhead(t *testing.T) { forModes(t, allModes, testSpecUpgradeAhead) }

// T1 S(k); T2 X(k) ⏳; T1 X(k) → ✓ at once (PostgreSQL's policy, not
// InnoDB's: the holder's upgrade goes ahead of the waiter), no deadlock;
// T1 C → T2 ✓.
func testSpecUpgradeAhead(t *testing.T, m mode) {
	db := openMem(t, specOptions())
	sc := newSched(t, db)
	t1, t2 := sc.begin("T1", specOpts(m, "T1")), sc.begin("T2", specOpts(m, "T2"))
	t1.do("S(k)", lockKey(txkv.Shared, "k"))
	t2.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t2.mustBlock("X(k)")
	t1.do("X(k)", lockKey(txkv.Exclusive, "k"))
	t1.mustNotBlock("X(k)")
	if err := t1.err("X(k)"); err != nil {
		t.Fatalf("T1's upgrade ahead of a waiter = %v", err)
	}
	sc.logLocks("after T1's upgrade")
	wantLocks(t, db, `"k": T1 X granted`, `"k": T2 X waiting`)
	t1.commit()
	if r := t2.awaitStep("X(k)"); r.err != nil {
		t.Fatalf("T2 X(k) after T1 committed = %v", r.err)
	}
	t2.commit()
	sc.finish()
	wantNoDeadlocks(t, db, t1, t2)
}

// WaitTimeout(0) bounds the wait to zero: a lock not free now fails with
// ErrLockTimeout at once (architecture §2: WaitTimeout(d) bounds one request's
// wait; only Forever waits without a bound). It must not fall back to "no
// timer" and wait forever — past even the DB's LockTimeout.
func TestWaitTimeoutZeroDoesNotWait(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: time.Hour})
	holder := mustBegin(t, db, &txkv.TxOptions{Label: "holder"})
	defer func() { _ = holder.Rollback() }()
	if err := lockKey(txkv.Exclusive, "k")(holder); err != nil {
		t.Fatal(err)
	}
	// The ctx only keeps a failing run short; it must not be what ends the wait.
	ctx, cancel := context.WithTimeout(bg, 2*time.Second)
	defer cancel()
	tx, err := db.Begin(ctx, &txkv.TxOptions{Label: "waiter"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.GetForUpdate([]byte("k"), txkv.WaitTimeout(0)); !errors.Is(err, txkv.ErrLockTimeout) {
		t.Fatalf("GetForUpdate(k, WaitTimeout(0)) on a held key = %v, want ErrLockTimeout at once", err)
	}
	wantNoTrace(t, db, tx.ID())
	// A free key is granted: zero means "do not wait", not "fail".
	if err := lockKey(txkv.Exclusive, "free", txkv.WaitTimeout(0))(tx); err != nil {
		t.Fatalf("WaitTimeout(0) on a free key = %v", err)
	}
}

// "Does not wait" never waits, so it can close no cycle: T1 holds a; T2 holds b and waits
// for a; T1 asks b with WaitTimeout(0). T1 gets ErrLockTimeout at once — and T2, which a
// queued request would have made a deadlock victim, is untouched and gets a once T1 ends.
func TestWaitTimeoutZeroMakesNoVictim(t *testing.T) {
	db := openMem(t, nil)
	t1 := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "T1"})
	t2 := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "T2"})
	if err := lockKey(txkv.Exclusive, "a")(t1); err != nil {
		t.Fatal(err)
	}
	if err := lockKey(txkv.Exclusive, "b")(t2); err != nil {
		t.Fatal(err)
	}
	t2a := make(chan error, 1)
	go func() { t2a <- lockKey(txkv.Exclusive, "a")(t2) }()
	waitFor(t, "T2 to wait for a", func() bool { return isWaiting(db, t2.ID()) })
	err := lockKey(txkv.Exclusive, "b", txkv.WaitTimeout(0))(t1)
	var le *txkv.LockError
	if !errors.Is(err, txkv.ErrLockTimeout) || !errors.As(err, &le) {
		t.Fatalf("T1 b with WaitTimeout(0) = %v, want a *LockError matching ErrLockTimeout", err)
	}
	if strings.Contains(err.Error(), "waited") {
		t.Fatalf("the refusal says it waited: %v", err)
	}
	if db.Stats().Deadlocks != 0 || db.LastDeadlock() != nil {
		t.Fatalf("a request that does not wait made a deadlock victim: %v", db.LastDeadlock())
	}
	if err := t1.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, t2a, "T2's lock on a"); err != nil {
		t.Fatalf("T2 after T1 ended = %v", err)
	}
	if err := t2.Commit(); err != nil {
		t.Fatal(err)
	}
}
