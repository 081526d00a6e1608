package txn

import (
	"context"
	"errors"
	"testing"

	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/steer"
)

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
	// burst (48 Updates) has.
	for n, inARow := 0, 0; inARow < 100; n++ {
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

// adaptiveStart follows the steered arm — except at the two oracle ends,
// which behave exactly as Pessimistic and Optimistic whatever was measured.
func TestAdaptiveStartFollowsArmExceptAtOracleEnds(t *testing.T) {
	want := map[steer.Arm]struct {
		run  runMode
		mode string // as Stats reports it
	}{
		steer.ArmMOCC:        {runHotLocking, "mocc"},
		steer.ArmOptimistic:  {runOptimistic, "optimistic"},
		steer.ArmPessimistic: {runLocking, "pessimistic"},
	}
	for _, th := range []int{AdaptiveAlways, 3, AdaptiveNever} {
		db := openAdaptive(t, th)
		for arm, w := range want {
			db.steering.adaptive.SetArm(arm)
			run := adaptiveStart(db)
			switch {
			case th == AdaptiveAlways && run != runLocking:
				t.Errorf("AdaptiveAlways, arm %d: %d, want locking", arm, run)
			case th == AdaptiveNever && run != runOptimistic:
				t.Errorf("AdaptiveNever, arm %d: %d, want optimistic", arm, run)
			case th == 3 && run != w.run:
				t.Errorf("threshold 3, arm %d: %d, want %d", arm, run, w.run)
			}
			mode := map[int]string{AdaptiveAlways: "pessimistic", 3: w.mode, AdaptiveNever: "optimistic"}[th]
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
// MOCC convoying (a wait per commit) is probed against plain optimistic:
// two drain phases, two measured ones, and the cheaper arm takes over.
// The drain phases of a probe block are not measured: a probe that starts
// in the previous arm's convoy and then runs clean still wins.
// From plain optimistic, MOCC is probed only if optimistic attempts fail
// at 5% or more (its locks can only save failed attempts); Pessimistic only
// on the guide's advice (conflict rate over 20%). A probe that loses backs
// off twice as long each time, up to the cap.
// A tie keeps the incumbent; a measured probe phase ended early as too
// costly ends the block.
// The steer itself, fed attempt outcomes: MOCC phases that fail an
// attempt per commit get plain optimistic probed, which then takes over,
// and adaptiveMode follows.
// A measured probe phase that wastes over 3× best's ends before its
// steerPhase commits.
// MOCC's retrospective lock list: after a conflict (with the DB-wide rate
// under 5%), the retry locks the failed attempt's hot keys before fn runs,
// in key order, exclusively those it wrote — so fn's reads of them are
// under the lock and never upgrade S to X.
func TestAdaptiveRetryTakesRetrospectiveLockList(t *testing.T) {
	db := openAdaptive(t, 2)
	db.window.SetClock(func() int64 { return 1000 })
	epoch := int64(100)
	db.temp.SetClock(func() int64 { return epoch })
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
		tx.run = map[Strategy]runMode{Pessimistic: runLocking, Hybrid: runOptimistic}[st]
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
