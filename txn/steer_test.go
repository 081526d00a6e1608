package txn

import (
	"context"
	"errors"
	"testing"

	"github.com/txkv/txkv/lockmgr"
)

// hybridMemory, driven outcome by outcome: 27 failed first attempts in a
// row lift the average over 10% (1 − (255/256)^27 ≈ 10.03%); then Updates
// start pessimistic except for a burst every probeEvery of them; a burst
// that fails backs the next one off, a burst that commits brings Hybrid
// back to starting optimistically.
func TestHybridMemoryStartsPessimisticThenProbesBack(t *testing.T) {
	var h hybridMemory
	for i := range 26 {
		h.firstAttempt(true)
		if p, _ := h.start(); p {
			t.Fatalf("pessimistic after %d failed first attempts, want 27", i+1)
		}
	}
	h.firstAttempt(true)
	if !h.pessimistic.Load() {
		t.Fatalf("optimistic after 27 failed first attempts (average %d/%d)", h.fail.Load(), failOne)
	}
	// burst runs Updates until a probe burst has begun and ended, reporting
	// its measured first attempts as failed or not, and returns how many
	// Updates started optimistic and how many were measured.
	burst := func(failed bool) (optimistic, measured int) {
		for n := 0; ; n++ {
			if n > maxProbeEvery+probeBurst {
				t.Fatal("no probe burst")
			}
			p, m := h.start()
			if !p {
				optimistic++
			}
			if m {
				measured++
				h.firstAttempt(failed)
			}
			if optimistic == probeBurst {
				return optimistic, measured
			}
		}
	}
	if o, m := burst(true); o != probeBurst || m != probeBurst-probeDrain {
		t.Fatalf("a burst started %d optimistic and measured %d, want %d and %d", o, m, probeBurst, probeBurst-probeDrain)
	}
	if got := h.probeEvery.Load(); got != 4*minProbeEvery || !h.pessimistic.Load() {
		t.Fatalf("after a failed burst: probeEvery %d (want %d), pessimistic %v", got, 4*minProbeEvery, h.pessimistic.Load())
	}
	for range 10 {
		burst(true)
	}
	if got := h.probeEvery.Load(); got != maxProbeEvery {
		t.Fatalf("probeEvery after 11 failed bursts = %d, want the cap %d", got, maxProbeEvery)
	}
	// Between bursts, every Update starts pessimistic.
	for range maxProbeEvery / 2 {
		if p, m := h.start(); !p || m {
			t.Fatal("an Update between bursts did not start pessimistic")
		}
	}
	burst(false) // contention dropped
	if h.pessimistic.Load() {
		t.Fatal("still pessimistic after a burst whose first attempts all committed")
	}
	if p, m := h.start(); p || !m {
		t.Fatal("back to optimistic: a new Update should start optimistic, measured")
	}
}

// Through Update: while every optimistic first attempt meets a conflicting
// commit, new Hybrid work soon starts pessimistic (the retry is no longer
// needed); once conflicts stop, the probes bring optimistic first attempts
// back. Driven by outcomes only — no clocks.
func TestHybridUpdateStartsPessimisticUnderSustainedConflicts(t *testing.T) {
	c := defaultConfig(t)
	c.Strategy = Hybrid
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	run := func(conflict bool) (first Strategy) {
		t.Helper()
		attempt := 0
		err := db.Update(ctx, nil, func(tx *Tx) error {
			if attempt++; attempt == 1 {
				first = tx.Strategy()
			}
			if _, err := tx.Get([]byte("k")); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if conflict && tx.Strategy() == Hybrid { // optimistic: someone commits k meanwhile
				if err := db.Put(ctx, []byte("k"), []byte("other")); err != nil {
					return err
				}
			}
			return tx.Put([]byte("k"), []byte("mine"))
		})
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	if st := db.Stats(); st.HybridStartsPessimistic || st.HybridFailRate != 0 {
		t.Fatalf("fresh DB: Stats say Hybrid starts pessimistic=%v, fail rate %v", st.HybridStartsPessimistic, st.HybridFailRate)
	}
	n := 0
	for run(true) != Pessimistic {
		if n++; n > 40 {
			t.Fatal("Hybrid still starts optimistic after 40 first attempts that all failed")
		}
	}
	if st := db.Stats(); !st.HybridStartsPessimistic || st.HybridFailRate <= 0.1 {
		t.Fatalf("after sustained conflicts: Stats say pessimistic=%v, fail rate %v", st.HybridStartsPessimistic, st.HybridFailRate)
	}
	// Back to optimistic: more optimistic starts in a row than a probe
	// burst has.
	for n, inARow := 0, 0; inARow < 2*probeBurst; n++ {
		if n == 5000 {
			t.Fatal("Hybrid still starts pessimistic after 5000 Updates without a conflict")
		}
		if inARow++; run(false) != Hybrid {
			inARow = 0
		}
	}
	if db.Stats().HybridStartsPessimistic {
		t.Fatal("back to optimistic starts, but Stats still say pessimistic")
	}
}

// adaptiveMode follows the steered arm — except at the two oracle ends,
// which behave exactly as Pessimistic and Optimistic whatever was measured.
func TestAdaptiveModeFollowsArmExceptAtOracleEnds(t *testing.T) {
	want := map[int]struct {
		s       Strategy
		locking bool
		mode    string // as Stats reports it
	}{
		adaptiveMOCC:        {Adaptive, true, "mocc"},
		adaptiveOptimistic:  {Optimistic, false, "optimistic"},
		adaptivePessimistic: {Pessimistic, false, "pessimistic"},
	}
	for _, th := range []int{0, 3, AdaptiveNever} {
		db := openAdaptive(t, th)
		for arm, w := range want {
			db.window.steer.adaptive.cur.Store(uint64(arm) << 32)
			s, locking := db.adaptiveMode()
			switch {
			case th == 0 && (s != Pessimistic || locking):
				t.Errorf("threshold 0, arm %d: %v %v, want pessimistic", arm, s, locking)
			case th == AdaptiveNever && (s != Optimistic || locking):
				t.Errorf("AdaptiveNever, arm %d: %v %v, want optimistic", arm, s, locking)
			case th == 3 && (s != w.s || locking != w.locking):
				t.Errorf("threshold 3, arm %d: %v %v, want %v %v", arm, s, locking, w.s, w.locking)
			}
			mode := map[int]string{0: "pessimistic", 3: w.mode, AdaptiveNever: "optimistic"}[th]
			if got := db.Stats().AdaptiveMode; got != mode {
				t.Errorf("threshold %d, arm %d: Stats().AdaptiveMode = %q, want %q", th, arm, got, mode)
			}
		}
		if h, a := db.steered(nil); h != nil || (a != nil) != (th == 3) {
			t.Errorf("threshold %d: steered = %v, %v; only thresholds strictly inside are measured", th, h, a)
		}
	}
}

// phases ends n phases of the schedule, each measuring waste wasted events
// (failed of them failed attempts) per commit, and returns the arms the
// phases after them ran.
func phases(sc *costSchedule, n int, arm func(int) int, wasted, failed, rate float64) []int {
	var next []int
	cur := sc.best
	for range n {
		a := cur
		if arm != nil {
			a = arm(cur)
		}
		cur = sc.end(a, phaseCost{wasted: wasted * 96, failed: failed * 96, commits: 96}, false, rate)
		next = append(next, cur)
	}
	return next
}

// MOCC convoying (a wait per commit) is probed against plain optimistic:
// two drain phases, two measured ones, and the cheaper arm takes over.
func TestCostScheduleLeavesConvoyingMOCC(t *testing.T) {
	var sc costSchedule
	got := phases(&sc, 1, nil, 1.0, 0.01, 0.02)
	if got[0] != adaptiveOptimistic || !sc.probing {
		t.Fatalf("after a MOCC phase wasting 1/commit: next %v, probing %v; want a probe of optimistic", got, sc.probing)
	}
	got = phases(&sc, steerProbePhases, nil, 0.02, 0.02, 0.02)
	for i, a := range got[:steerProbePhases-1] {
		if a != adaptiveOptimistic {
			t.Fatalf("probe block phase %d ran arm %d", i+1, a)
		}
	}
	if sc.best != adaptiveOptimistic || sc.switches != 1 {
		t.Fatalf("best %d after the probe (switches %d), want optimistic", sc.best, sc.switches)
	}
	// Optimistic wasting under 5% never pays for a probe.
	for i, a := range phases(&sc, 5000, nil, 0.04, 0.02, 0.5) {
		if a != adaptiveOptimistic {
			t.Fatalf("phase %d probed arm %d although best wastes under 5%%", i, a)
		}
	}
}

// The drain phases of a probe block are not measured: a probe that starts
// in the previous arm's convoy and then runs clean still wins.
func TestCostScheduleIgnoresProbeDrainPhases(t *testing.T) {
	var sc costSchedule
	phases(&sc, 1, nil, 1.0, 0, 0)
	for i := range steerProbePhases {
		w := 0.01
		if i < steerProbeWarm {
			w = 20 // the inherited queue
		}
		sc.end(sc.probe, phaseCost{wasted: w * 96, commits: 96}, false, 0)
	}
	if sc.best != adaptiveOptimistic {
		t.Fatalf("best %d: the drain phases counted", sc.best)
	}
}

// From plain optimistic, MOCC is probed only if optimistic attempts fail
// at 5% or more (its locks can only save failed attempts); Pessimistic only
// on the guide's advice (conflict rate over 20%). A probe that loses backs
// off twice as long each time, up to the cap.
func TestCostScheduleChallengers(t *testing.T) {
	sc := costSchedule{best: adaptiveOptimistic}
	if got := phases(&sc, 1, nil, 0.5, 0.01, 0.1); got[0] != adaptiveOptimistic {
		t.Fatalf("optimistic wasting waits, not failures: probed %d", got[0])
	}
	if got := phases(&sc, 1, nil, 0.5, 0.01, 0.3); got[0] != adaptivePessimistic {
		t.Fatalf("conflict rate 30%%: probed %d, want pessimistic", got[0])
	}
	// The pessimistic probe wastes twice as much: it backs off.
	phases(&sc, steerProbePhases, nil, 1.0, 0, 0.3)
	if sc.best != adaptiveOptimistic || sc.wait[adaptivePessimistic] != steerFirstWait {
		t.Fatalf("best %d, pessimistic waits %d; want optimistic, %d", sc.best, sc.wait[adaptivePessimistic], steerFirstWait)
	}
	sc = costSchedule{best: adaptiveOptimistic}
	if got := phases(&sc, 1, nil, 0.5, 0.2, 0.1); got[0] != adaptiveMOCC {
		t.Fatalf("optimistic failing 20%%: probed %d, want MOCC", got[0])
	}
	waits := []int{}
	for range 10 {
		phases(&sc, steerProbePhases, nil, 2.0, 0, 0.1) // MOCC loses
		waits = append(waits, sc.wait[adaptiveMOCC])
		for !sc.probing {
			phases(&sc, 1, nil, 0.5, 0.2, 0.1)
		}
	}
	if waits[0] != steerFirstWait || waits[1] != 2*steerFirstWait || waits[9] != steerMaxWait {
		t.Fatalf("MOCC's back-offs %v: want %d, doubling, capped at %d", waits, steerFirstWait, steerMaxWait)
	}
}

// A tie keeps the incumbent; a measured probe phase ended early as too
// costly ends the block.
func TestCostScheduleTieAndEarlyEnd(t *testing.T) {
	var sc costSchedule
	phases(&sc, 1, nil, 0.5, 0, 0)
	phases(&sc, steerProbePhases, nil, 0.5, 0, 0)
	if sc.best != adaptiveMOCC || sc.probing || sc.switches != 0 {
		t.Fatalf("tie: best %d probing %v switches %d", sc.best, sc.probing, sc.switches)
	}
	for !sc.probing {
		phases(&sc, 1, nil, 0.5, 0, 0)
	}
	phases(&sc, steerProbeWarm, nil, 0.5, 0, 0)
	if !sc.measuring() {
		t.Fatal("the phase after the drain phases is not measured")
	}
	if next := sc.end(sc.probe, phaseCost{wasted: 100, commits: 32}, true, 0); next != adaptiveMOCC || sc.probing {
		t.Fatalf("after an early end: next %d, probing %v", next, sc.probing)
	}
}

// The steer itself, fed attempt outcomes: MOCC phases that fail an
// attempt per commit get plain optimistic probed, which then takes over,
// and adaptiveMode follows.
func TestAdaptiveSteerObserveSwitchesArm(t *testing.T) {
	db := openAdaptive(t, 3)
	s := &db.window.steer.adaptive
	for range steerPhase {
		s.observe(db, false)
		s.observe(db, true)
	}
	if s.arm() != adaptiveOptimistic {
		t.Fatalf("arm %d after a MOCC phase failing an attempt per commit, want an optimistic probe", s.arm())
	}
	for range steerProbePhases * steerPhase {
		s.observe(db, true)
	}
	if s.arm() != adaptiveOptimistic || s.mu.sched.best != adaptiveOptimistic {
		t.Fatalf("arm %d best %d after a clean probe, want optimistic", s.arm(), s.mu.sched.best)
	}
	if st, locking := db.adaptiveMode(); st != Optimistic || locking {
		t.Fatalf("adaptiveMode = %v %v, want optimistic", st, locking)
	}
}

// A measured probe phase that wastes over 3× best's ends before its
// steerPhase commits.
func TestAdaptiveSteerEndsCostlyProbeEarly(t *testing.T) {
	db := openAdaptive(t, 3)
	s := &db.window.steer.adaptive
	for range steerPhase { // MOCC: 1 failure per commit
		s.observe(db, false)
		s.observe(db, true)
	}
	for range steerProbeWarm * steerPhase { // the probe's drain phases
		s.observe(db, true)
	}
	phase := s.cur.Load() >> 40
	for i := 0; s.cur.Load()>>40 == phase; i++ {
		if i > steerPhase {
			t.Fatal("a probe phase failing 5 attempts per commit ran its full length")
		}
		for range 5 {
			s.observe(db, false)
		}
		s.observe(db, true)
	}
	if s.mu.sched.best != adaptiveMOCC || s.arm() != adaptiveMOCC {
		t.Fatalf("best %d, arm %d after the costly probe, want MOCC", s.mu.sched.best, s.arm())
	}
}

// MOCC's retrospective lock list: after a conflict (with the DB-wide rate
// under 5%), the retry locks the failed attempt's hot keys before fn runs,
// in key order, exclusively those it wrote — so fn's reads of them are
// under the lock and never upgrade S to X.
func TestAdaptiveRetryTakesRetrospectiveLockList(t *testing.T) {
	db := openAdaptive(t, 2)
	db.window.now = func() int64 { return 1000 }
	epoch := int64(100)
	db.temp.now = func() int64 { return epoch }
	for range 1000 {
		db.window.Note(2, false) // a quiet DB: the retry is MOCC's, not Hybrid's
	}
	ctx := context.Background()
	attempts := 0
	err := db.Update(ctx, nil, func(tx *Tx) error {
		attempts++
		if attempts == 2 {
			if held := heldBy(db, tx); held["a"] != lockmgr.Exclusive || held["b"] != lockmgr.Shared || len(held) != 2 {
				t.Errorf("retry starts holding %v, want a:X b:S (hot keys only)", held)
			}
			if tx.Strategy() != Adaptive {
				t.Errorf("retry runs %v, want Adaptive (optimistic, hot keys locked)", tx.Strategy())
			}
			epoch += 40 // every temperature decays to 0 …
		}
		for _, k := range []string{"c", "b", "a"} {
			if _, err := tx.Get([]byte(k)); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if attempts == 2 {
			// … yet a, written by the failed attempt and held X, is read
			// under its lock (latest version, nothing to validate), not
			// from the snapshot.
			for _, k := range tx.reads {
				if string(k) == "a" {
					t.Errorf("retry read a from its snapshot (reads %q)", tx.reads)
				}
			}
		}
		if err := tx.Put([]byte("a"), []byte("v")); err != nil {
			return err
		}
		if attempts == 1 {
			for range 2 { // a and b are hot now; c stays cold
				db.temp.Heat([]byte("a"), true)
				db.temp.Heat([]byte("b"), false)
			}
			return db.Put(ctx, []byte("b"), []byte("other")) // attempt 1 fails validation
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err %v after %d attempts", err, attempts)
	}
}

// A Hybrid attempt that started pessimistic and lost a deadlock retries as
// Pessimistic does, with no prelock: its reads were not recorded, and
// prelocking only what it wrote lengthened X holds (measured: twice the
// deadlocks). An optimistic first attempt's retry prelocks what it touched.
func TestHybridPlanRetry(t *testing.T) {
	c := defaultConfig(t)
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, st := range []Strategy{Pessimistic, Hybrid} {
		tx, err := db.begin(context.Background(), &TxOptions{Strategy: Hybrid}, true, &retryPlan{pessimistic: true})
		if err != nil {
			t.Fatal(err)
		}
		tx.strategy = st
		if err := tx.Put([]byte("w"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		next := db.planRetry(tx, ErrConflict, false)
		_ = tx.rollback()
		switch {
		case next.plan == nil || !next.plan.pessimistic:
			t.Errorf("%v attempt: plan %+v, want a pessimistic retry", st, next.plan)
		case st == Pessimistic && len(next.plan.pre) != 0:
			t.Errorf("pessimistic attempt: prelocks %v, want none", next.plan.pre)
		case st == Hybrid && (len(next.plan.pre) != 1 || string(next.plan.pre[0].key) != "w"):
			t.Errorf("optimistic attempt: prelocks %v, want w", next.plan.pre)
		}
	}
}

// Locks MOCC takes cost even when free: eight of them per commit weigh as
// much as a failed attempt per commit, and get plain optimistic probed.
func TestAdaptiveSteerCountsHotLocks(t *testing.T) {
	db := openAdaptive(t, 3)
	s := &db.window.steer.adaptive
	for range steerPhase {
		for range lockShare {
			s.noteHotLock()
		}
		s.observe(db, true)
	}
	if s.arm() != adaptiveOptimistic {
		t.Fatalf("arm %d after a MOCC phase taking %d locks per commit, want an optimistic probe", s.arm(), lockShare)
	}
	db = openAdaptive(t, 3)
	s = &db.window.steer.adaptive
	for range steerPhase {
		s.noteHotLock() // one lock per commit: an eighth, over 5%, …
		s.observe(db, true)
	}
	if s.arm() != adaptiveOptimistic {
		t.Fatalf("arm %d after a MOCC phase taking a lock per commit, want an optimistic probe", s.arm())
	}
}
