package steer

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Window starts a goroutine: none may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeEnv is a database with no lock waits and a fixed conflict rate.
type fakeEnv struct {
	waits uint64
	rate  float64
}

func (e *fakeEnv) LockWaits() uint64     { return e.waits }
func (e *fakeEnv) ConflictRate() float64 { return e.rate }

func TestHybridMemoryStartsPessimisticThenProbesBack(t *testing.T) {
	var h Hybrid
	for i := range 26 {
		h.FirstAttempt(true)
		if p, _ := h.Start(); p {
			t.Fatalf("pessimistic after %d failed first attempts, want 27", i+1)
		}
	}
	h.FirstAttempt(true)
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
			p, m := h.Start()
			if !p {
				optimistic++
			}
			if m {
				measured++
				h.FirstAttempt(failed)
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
		if p, m := h.Start(); !p || m {
			t.Fatal("an Update between bursts did not start pessimistic")
		}
	}
	burst(false) // contention dropped
	if h.pessimistic.Load() {
		t.Fatal("still pessimistic after a burst whose first attempts all committed")
	}
	if p, m := h.Start(); p || !m {
		t.Fatal("back to optimistic: a new Update should start optimistic, measured")
	}
}

func phases(sc *costSchedule, n int, arm func(Arm) Arm, wasted, failed, rate float64) []Arm {
	var next []Arm
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

func TestCostScheduleLeavesConvoyingMOCC(t *testing.T) {
	var sc costSchedule
	got := phases(&sc, 1, nil, 1.0, 0.01, 0.02)
	if got[0] != ArmOptimistic || !sc.probing {
		t.Fatalf("after a MOCC phase wasting 1/commit: next %v, probing %v; want a probe of optimistic", got, sc.probing)
	}
	got = phases(&sc, steerProbePhases, nil, 0.02, 0.02, 0.02)
	for i, a := range got[:steerProbePhases-1] {
		if a != ArmOptimistic {
			t.Fatalf("probe block phase %d ran arm %d", i+1, a)
		}
	}
	if sc.best != ArmOptimistic || sc.switches != 1 {
		t.Fatalf("best %d after the probe (switches %d), want optimistic", sc.best, sc.switches)
	}
	// Optimistic wasting under 5% never pays for a probe.
	for i, a := range phases(&sc, 5000, nil, 0.04, 0.02, 0.5) {
		if a != ArmOptimistic {
			t.Fatalf("phase %d probed arm %d although best wastes under 5%%", i, a)
		}
	}
}

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
	if sc.best != ArmOptimistic {
		t.Fatalf("best %d: the drain phases counted", sc.best)
	}
}

func TestCostScheduleChallengers(t *testing.T) {
	sc := costSchedule{best: ArmOptimistic}
	if got := phases(&sc, 1, nil, 0.5, 0.01, 0.1); got[0] != ArmOptimistic {
		t.Fatalf("optimistic wasting waits, not failures: probed %d", got[0])
	}
	if got := phases(&sc, 1, nil, 0.5, 0.01, 0.3); got[0] != ArmPessimistic {
		t.Fatalf("conflict rate 30%%: probed %d, want pessimistic", got[0])
	}
	// The pessimistic probe wastes twice as much: it backs off.
	phases(&sc, steerProbePhases, nil, 1.0, 0, 0.3)
	if sc.best != ArmOptimistic || sc.wait[ArmPessimistic] != steerFirstWait {
		t.Fatalf("best %d, pessimistic waits %d; want optimistic, %d", sc.best, sc.wait[ArmPessimistic], steerFirstWait)
	}
	sc = costSchedule{best: ArmOptimistic}
	if got := phases(&sc, 1, nil, 0.5, 0.2, 0.1); got[0] != ArmMOCC {
		t.Fatalf("optimistic failing 20%%: probed %d, want MOCC", got[0])
	}
	waits := []int{}
	for range 10 {
		phases(&sc, steerProbePhases, nil, 2.0, 0, 0.1) // MOCC loses
		waits = append(waits, sc.wait[ArmMOCC])
		for !sc.probing {
			phases(&sc, 1, nil, 0.5, 0.2, 0.1)
		}
	}
	if waits[0] != steerFirstWait || waits[1] != 2*steerFirstWait || waits[9] != steerMaxWait {
		t.Fatalf("MOCC's back-offs %v: want %d, doubling, capped at %d", waits, steerFirstWait, steerMaxWait)
	}
}

func TestCostScheduleTieAndEarlyEnd(t *testing.T) {
	var sc costSchedule
	phases(&sc, 1, nil, 0.5, 0, 0)
	phases(&sc, steerProbePhases, nil, 0.5, 0, 0)
	if sc.best != ArmMOCC || sc.probing || sc.switches != 0 {
		t.Fatalf("tie: best %d probing %v switches %d", sc.best, sc.probing, sc.switches)
	}
	for !sc.probing {
		phases(&sc, 1, nil, 0.5, 0, 0)
	}
	phases(&sc, steerProbeWarm, nil, 0.5, 0, 0)
	if !sc.measuring() {
		t.Fatal("the phase after the drain phases is not measured")
	}
	if next := sc.end(sc.probe, phaseCost{wasted: 100, commits: 32}, true, 0); next != ArmMOCC || sc.probing {
		t.Fatalf("after an early end: next %d, probing %v", next, sc.probing)
	}
}

func TestAdaptiveSteerObserveSwitchesArm(t *testing.T) {
	env := &fakeEnv{}
	s := &Adaptive{}
	for range steerPhase {
		s.Observe(env, false)
		s.Observe(env, true)
	}
	if s.Arm() != ArmOptimistic {
		t.Fatalf("arm %d after a MOCC phase failing an attempt per commit, want an optimistic probe", s.Arm())
	}
	for range steerProbePhases * steerPhase {
		s.Observe(env, true)
	}
	if s.Arm() != ArmOptimistic || s.mu.sched.best != ArmOptimistic {
		t.Fatalf("arm %d best %d after a clean probe, want optimistic", s.Arm(), s.mu.sched.best)
	}
}

func TestAdaptiveSteerEndsCostlyProbeEarly(t *testing.T) {
	env := &fakeEnv{}
	s := &Adaptive{}
	for range steerPhase { // MOCC: 1 failure per commit
		s.Observe(env, false)
		s.Observe(env, true)
	}
	for range steerProbeWarm * steerPhase { // the probe's drain phases
		s.Observe(env, true)
	}
	phase := s.cur.Load() >> 40
	for i := 0; s.cur.Load()>>40 == phase; i++ {
		if i > steerPhase {
			t.Fatal("a probe phase failing 5 attempts per commit ran its full length")
		}
		for range 5 {
			s.Observe(env, false)
		}
		s.Observe(env, true)
	}
	if s.mu.sched.best != ArmMOCC || s.Arm() != ArmMOCC {
		t.Fatalf("best %d, arm %d after the costly probe, want MOCC", s.mu.sched.best, s.Arm())
	}
}

func TestAdaptiveSteerCountsHotLocks(t *testing.T) {
	env := &fakeEnv{}
	s := &Adaptive{}
	for range steerPhase {
		for range lockShare {
			s.NoteHotLock()
		}
		s.Observe(env, true)
	}
	if s.Arm() != ArmOptimistic {
		t.Fatalf("arm %d after a MOCC phase taking %d locks per commit, want an optimistic probe", s.Arm(), lockShare)
	}
	env = &fakeEnv{}
	s = &Adaptive{}
	for range steerPhase {
		s.NoteHotLock() // one lock per commit: an eighth, over 5%, …
		s.Observe(env, true)
	}
	if s.Arm() != ArmOptimistic {
		t.Fatalf("arm %d after a MOCC phase taking a lock per commit, want an optimistic probe", s.Arm())
	}
}

func TestTemperatureDecays(t *testing.T) {
	tp := NewTemperature()
	now := int64(100)
	tp.SetClock(func() int64 { return now })
	for range 8 {
		tp.Heat([]byte("k"), false)
	}
	if got := tp.Of([]byte("k")); got != 8 {
		t.Fatalf("temperature %d, want 8", got)
	}
	now += 2 // two epochs later: 8 >> 2
	if got := tp.Of([]byte("k")); got != 2 {
		t.Fatalf("after 2 epochs %d, want 2", got)
	}
	tp.Heat([]byte("k"), false)
	if got := tp.Of([]byte("k")); got != 3 {
		t.Fatalf("heat after decay %d, want 3", got)
	}
	now += 40
	if got := tp.Of([]byte("k")); got != 0 {
		t.Fatalf("long after %d, want 0", got)
	}
}

func TestWindowForgetsOldSeconds(t *testing.T) {
	w := NewWindow(nil)
	sec := int64(1000)
	w.SetClock(func() int64 { return sec })
	w.Note(1, true)
	w.Note(2, false)
	if r := w.Rate(); r != 0.5 {
		t.Fatalf("rate %v", r)
	}
	sec += windowSeconds
	w.Note(2, false)
	if r := w.Rate(); r != 0 {
		t.Fatalf("rate after the window moved on: %v, want 0", r)
	}
}

func TestWindowClockTicks(t *testing.T) {
	w := NewWindow(nil)
	w.Start()
	defer w.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	deadline := time.After(10 * time.Second)
	for w.now() < 1 {
		select {
		case <-poll.C:
		case <-deadline:
			t.Fatal("the window's clock did not reach 1 s in 10 s")
		}
	}
}

func TestAdaptiveSteersByConflictRate(t *testing.T) {
	for _, rate := range []int{30, 10} {
		env := &fakeEnv{rate: float64(rate) / 100}
		s := &Adaptive{}
		s.mu.sched.backOff(ArmOptimistic, steerMaxWait) // as if plain optimistic had lost
		feed := func(failuresPerCommit, phases int) {
			for range phases * steerPhase {
				for range failuresPerCommit {
					s.Observe(env, false)
				}
				s.Observe(env, true)
			}
		}
		feed(1, 1) // MOCC fails an attempt per commit
		if rate == 10 {
			if s.Arm() != ArmMOCC {
				t.Errorf("10%% conflicts: probing arm %d, want none (pessimistic only on the guide's advice)", s.Arm())
			}
			continue
		}
		if s.Arm() != ArmPessimistic {
			t.Fatalf("30%% conflicts: arm %d, want a pessimistic probe", s.Arm())
		}
		feed(0, steerProbePhases)
		if s.Arm() != ArmPessimistic || s.mu.sched.best != ArmPessimistic {
			t.Fatalf("30%% conflicts, pessimistic wasting nothing: arm %d, want pessimistic", s.Arm())
		}
	}
}

// The flowchart's rules in order over plain facts: the first that decides
// wins, later ones add reasons; the conflict bands' edges.
func TestFlowchart(t *testing.T) {
	for _, c := range []struct {
		f    Facts
		want Choice
		rule string
	}{
		{Facts{Critical: true, ConflictRate: 0.01, ReadWriteRatio: 1}, ChoosePessimistic, "critical-writes"},
		{Facts{TxDuration: 2 * time.Second, ConflictRate: 0.5}, ChooseOptimistic, "long-transaction"},
		{Facts{TxDuration: 2 * time.Second, UsersCanWait: true, ConflictRate: 0.5}, ChoosePessimistic, "high-conflict"},
		{Facts{ConflictRate: HighConflict}, ChooseHybrid, "moderate-conflict"},
		{Facts{ConflictRate: LowConflict}, ChooseHybrid, "moderate-conflict"},
		{Facts{ConflictRate: 0.049, ReadWriteRatio: ReadHeavy}, ChooseOptimistic, "read-heavy"},
		{Facts{ConflictRate: 0.049, ReadWriteRatio: 1}, ChooseOptimistic, "low-conflict"},
	} {
		got, reasons := Flowchart(c.f)
		if got != c.want || len(reasons) == 0 || reasons[0][:len("rule "+c.rule)] != "rule "+c.rule {
			t.Errorf("%+v: %v %q, want %v by rule %s", c.f, got, reasons, c.want, c.rule)
		}
	}
	if _, reasons := Flowchart(Facts{Distributed: true}); reasons[len(reasons)-1][:len("rule distributed")] != "rule distributed" {
		t.Errorf("distributed: %q", reasons)
	}
}
