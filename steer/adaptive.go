package steer

import (
	"sync"
	"sync/atomic"
)

// Adaptive chooses how new Adaptive transactions run, among three
// arms: MOCC (optimistic reads, hot keys locked at read time, the
// retrospective lock list on retry — the strategy as the issue defines it),
// plain optimistic (the temperature is still learned, not acted on) and
// plain pessimistic. It compares the arms' waste per commit — failed
// attempts, lock waits, and an eighth for each lock MOCC takes (events) —
// measured in phases of steerPhase commits, each phase's first steerWarm
// commits (stragglers of the previous arm) left out:
//
//	phase │ best │ best │ ··· │ best │ probe │ probe │ probe │ probe │ best │ ···
//	       ╰─ best's stretch: its cost ─╯ ╰ drain ──────╯╰ measured ──╯
//
//	MOCC is best at first. After each phase of best, a probe block starts if
//	  - best wastes ≥ LowConflict (5%) per commit over its stretch — below
//	    that no arm can win more than 5%, so barely conflicting work never
//	    pays for a probe; and
//	  - an arm's back-off has run out, in this order: plain optimistic (it
//	    holds no locks, so it cannot convoy); pessimistic, only when the
//	    windowed conflict rate is over the guide's 20%; MOCC — from plain
//	    optimistic only if its attempts fail at 5% or more, since MOCC's
//	    locks can only save failed attempts, and they cost waits.
//	A probe block runs the arm for steerProbePhases phases; the first
//	steerProbeWarm are not measured (queues left by the previous arm drain).
//	Probe cost < 0.9 × best's → it becomes best; > 1/0.9 × → its back-off
//	doubles (16 … 1024 phases); else a tie, best stays. A measured probe
//	phase wasting over 3× best's ends the block at once.
//
// Costs get steerSlack added before they are compared, so two arms that
// both waste next to nothing tie instead of flapping on noise. Why the
// guide's 20% only advises: the windowed rate counts deadlock victims, so
// once Pessimistic runs, its own S→X upgrade deadlocks keep the rate high —
// obeyed blindly, it locks the DB into Pessimistic even where optimistic
// reads waste a tenth as much (measured at hot=10 on the sweep).
type Adaptive struct {
	// cur packs the phase sequence number (bits 40–63), the phase's arm
	// (bits 32–39) and the commits counted in the phase (bits 0–31): one
	// word, so a commit counts in the phase it observed, never the next.
	cur atomic.Uint64
	// failures counts failed attempts of steered Updates, ever; hotLocks
	// the locks MOCC took at read (or write) time, ever.
	failures, hotLocks atomic.Uint64
	// atWarm and failedAtWarm are the wasted events (failures + lock
	// waits) and the failures when the phase's steerWarm-th commit
	// happened; warmed says they are set. giveUp > 0 in a measured probe
	// phase: the waste per commit (in 1/costOne) that ends it early.
	atWarm, failedAtWarm, giveUp atomic.Uint64
	warmed                       atomic.Bool

	// mu serializes the end of a phase and protects sched.
	mu struct {
		sync.Mutex
		sched costSchedule
	}
}

const (
	steerPhase       = 128  // commits per phase
	steerWarm        = 32   // commits at the start of a phase that are not measured
	steerMinMeasured = 32   // commits measured before a costly probe phase may be ended
	steerProbePhases = 4    // phases in a probe block …
	steerProbeWarm   = 2    // … the first of which are not measured
	steerStretch     = 4096 // measured commits of best beyond which older ones count half
	steerSlack       = 0.05
	steerMargin      = 0.10
	steerFirstWait   = 16   // phases an arm waits before it is probed again …
	steerMaxWait     = 1024 // … at most, doubling while it keeps losing
	costOne          = 1 << 16
)

// Arm is one way Adaptive can run a transaction.
type Arm int

// The arms of Adaptive.
const (
	ArmMOCC        Arm = 0 // hot keys locked at read time, retrospective lock list
	ArmOptimistic  Arm = 1 // temperature learned, not acted on: plain OCC
	ArmPessimistic Arm = 2 // plain strict 2PL
	adaptiveArms       = 3
)

// Env is what Adaptive reads from the database it steers: the lock
// manager's running count of lock waits, and the windowed conflict rate
// (Window.Rate). Both are read only at a phase's edges.
type Env interface {
	LockWaits() uint64
	ConflictRate() float64
}

// Arm returns the arm new Adaptive transactions run now.
func (s *Adaptive) Arm() Arm { return Arm(s.cur.Load() >> 32 & 0xff) }

// events is the running total of wasted work, in 1/lockShare attempts:
// failed attempts of steered Updates and every lock wait of the DB count a
// whole attempt each (a wait costs a park, a wake-up and a deadlock-graph
// update — about a short attempt, measured on the contention sweep); a hot
// lock MOCC took counts 1/lockShare (acquire, release and a read of the
// latest version cost about an eighth of a short transaction even when the
// lock is free — at hot=100 on the sweep, where few of them wait, they made
// MOCC a third slower than plain optimistic reads).
func (s *Adaptive) events(env Env) uint64 {
	return lockShare*(s.failures.Load()+env.LockWaits()) + s.hotLocks.Load()
}

// lockShare is how many read-time locks cost one wasted attempt.
const lockShare = 8

// NoteHotLock counts a lock MOCC takes at read or write time.
func (s *Adaptive) NoteHotLock() { s.hotLocks.Add(1) }

// Observe records the end of an attempt of a steered Update.
func (s *Adaptive) Observe(env Env, committed bool) {
	if !committed {
		s.failures.Add(1)
	}
	for {
		c := s.cur.Load()
		n := uint32(c)
		switch {
		case n >= steerPhase:
			return // being closed
		case !committed:
			if s.costly(env, n) {
				s.close(env, c)
			}
			return
		case !s.cur.CompareAndSwap(c, c+1):
			continue
		}
		switch n++; {
		case n == steerWarm:
			s.failedAtWarm.Store(s.failures.Load())
			s.atWarm.Store(s.events(env))
			s.warmed.Store(true)
		case n == steerPhase:
			s.end(env, c+1, n, false)
		case s.costly(env, n):
			s.close(env, c+1)
		}
		return
	}
}

// costly reports whether the running phase, n commits in, is a measured
// probe phase already wasting more than giveUp per measured commit.
func (s *Adaptive) costly(env Env, n uint32) bool {
	limit := s.giveUp.Load()
	if limit == 0 || !s.warmed.Load() || n < steerWarm+steerMinMeasured {
		return false
	}
	return (s.events(env)-s.atWarm.Load())*(costOne/lockShare) > limit*uint64(n-steerWarm)
}

// close ends the phase c early, unless it has ended already.
func (s *Adaptive) close(env Env, c uint64) {
	closing := c&^0xffffffff | steerPhase
	if s.cur.CompareAndSwap(c, closing) {
		s.end(env, closing, uint32(c), true)
	}
}

// end closes the phase whose word is c — its counter at steerPhase, so no
// one else counts in it any more — after n commits, and starts the next.
func (s *Adaptive) end(env Env, c uint64, n uint32, early bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p phaseCost
	if s.warmed.Load() && n > steerWarm {
		p = phaseCost{
			wasted:  float64(s.events(env)-s.atWarm.Load()) / lockShare,
			failed:  float64(s.failures.Load() - s.failedAtWarm.Load()),
			commits: float64(n - steerWarm),
		}
	}
	sc := &s.mu.sched
	next := sc.end(Arm(c>>32&0xff), p, early, env.ConflictRate())
	var limit uint64 // 0: not ended early
	if sc.measuring() {
		limit = uint64((3*sc.cost(sc.best) - steerSlack) * costOne) // cost + slack > 3 × (best's + slack)
	}
	s.warmed.Store(false)
	s.giveUp.Store(limit)
	s.cur.Store((c>>40+1)<<40 | uint64(next)<<32)
}

// phaseCost is what a phase measured: wasted events (failed attempts and
// lock waits), of which failed attempts, over commits commits.
type phaseCost struct{ wasted, failed, commits float64 }

// costSchedule decides which arm each phase runs (see Adaptive). It
// is a plain state machine, driven by end, so tests can drive it directly.
type costSchedule struct {
	best     Arm
	probing  bool                    // a probe block is running (else best is exploited)
	probe    Arm                     // the probe block's arm
	block    int                     // probing: phases of the block ended so far
	phase    int                     // phases ended so far
	from     [adaptiveArms]int       // the phase from which an arm may be probed again
	wait     [adaptiveArms]int       // its back-off, in phases
	sum      [adaptiveArms]phaseCost // best: its stretch; probe: the block's measured phases
	switches uint64                  // how often best changed
}

// end records a phase of arm that measured p — early if it was ended
// early — while the windowed conflict rate was rate, and returns the arm of
// the next phase.
func (sc *costSchedule) end(arm Arm, p phaseCost, early bool, rate float64) Arm {
	sc.phase++
	if !sc.probing {
		sc.add(arm, p)
		if s := &sc.sum[arm]; s.commits > steerStretch {
			*s = phaseCost{s.wasted / 2, s.failed / 2, s.commits / 2} // forget slowly
		}
		o := sc.challenger(rate)
		if o < 0 {
			return sc.best
		}
		sc.probing, sc.probe, sc.block = true, o, 0
		sc.sum[o] = phaseCost{}
		return o
	}
	sc.block++
	if sc.block > steerProbeWarm {
		sc.add(arm, p)
	}
	if early || sc.block == steerProbePhases {
		sc.decide()
		return sc.best
	}
	return sc.probe
}

func (sc *costSchedule) add(arm Arm, p phaseCost) {
	s := &sc.sum[arm]
	s.wasted += p.wasted
	s.failed += p.failed
	s.commits += p.commits
}

// measuring reports whether the next phase is a measured probe phase.
func (sc *costSchedule) measuring() bool { return sc.probing && sc.block >= steerProbeWarm }

// challenger picks the arm to probe now, or -1 (see Adaptive).
func (sc *costSchedule) challenger(rate float64) Arm {
	if sc.cost(sc.best)-steerSlack < LowConflict {
		return -1
	}
	due := func(a Arm) bool { return a != sc.best && sc.from[a] <= sc.phase }
	b := sc.sum[sc.best]
	failing := b.commits > 0 && b.failed/b.commits >= LowConflict
	switch {
	case due(ArmOptimistic):
		return ArmOptimistic
	case rate > HighConflict && due(ArmPessimistic):
		return ArmPessimistic
	case due(ArmMOCC) && (sc.best != ArmOptimistic || failing):
		return ArmMOCC
	}
	return -1
}

// cost is an arm's measured waste per commit, plus steerSlack.
func (sc *costSchedule) cost(arm Arm) float64 {
	s := sc.sum[arm]
	switch {
	case s.commits > 0:
		return s.wasted/s.commits + steerSlack
	case arm == sc.best:
		return steerSlack // not measured yet: assume it wastes nothing
	}
	return steerPhase // a probe that committed nothing measured: as bad as it gets
}

// decide ends a probe block.
func (sc *costSchedule) decide() {
	o := sc.probe
	sc.probing = false
	r := sc.cost(o) / sc.cost(sc.best)
	switch {
	case r < 1-steerMargin:
		old := sc.best
		sc.best = o
		sc.switches++
		sc.wait = [adaptiveArms]int{}
		sc.backOff(old, steerFirstWait)
		sc.sum = [adaptiveArms]phaseCost{}
	case r > 1/(1-steerMargin):
		sc.backOff(o, min(2*max(sc.wait[o], steerFirstWait/2), steerMaxWait))
	default: // a tie: best stays
		sc.backOff(o, max(sc.wait[o], steerFirstWait))
	}
}

// backOff makes arm wait phases before it is probed again.
func (sc *costSchedule) backOff(arm Arm, wait int) {
	sc.wait[arm] = wait
	sc.from[arm] = sc.phase + wait
}

// SetArm starts a new phase on arm a, as if the schedule had chosen it: for
// tests that need the DB in a given arm, and tools that pin one.
func (s *Adaptive) SetArm(a Arm) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cur.Load()
	s.warmed.Store(false)
	s.giveUp.Store(0)
	s.cur.Store((c>>40+1)<<40 | uint64(a)<<32)
}
