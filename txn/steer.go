package txn

import (
	"sync"
	"sync/atomic"
)

// This file is the measured half of Hybrid's and Adaptive's choices. Each
// DB remembers how its recent Hybrid and Adaptive work went, and new
// transactions start in the mode that memory favours. Every mode is a
// correct strategy, so a wrong choice costs speed, never correctness.
//
// Why measure: the guide's thresholds and MOCC's temperature assume that a
// retry costs about as much as a lock wait. In memory, with short
// transactions on few cores, an optimistic retry costs a few microseconds,
// while a lock wait costs a park, a wake-up and a deadlock-graph update —
// and once a queue has formed on a hot key, FIFO handoff keeps it alive:
// every transaction that touches the key waits (a lock convoy). Which mode
// wins depends on the machine, the length of the transactions and the key
// distribution, so the DB measures it.
//
// Both memories count events (failed attempts, lock waits, commits), not
// time: on a shared machine commit rates swing by a third from one
// millisecond to the next, while event counts per commit barely move.
// Only DB.Update feeds them (it sees every attempt's outcome); transactions
// begun with Begin run the chosen mode unmeasured.

// hybridMemory is Hybrid's "try optimistic first, fall back to
// pessimistic" at the level of the workload: a moving average of how often
// Hybrid's optimistic first attempts fail. Once that is high, new Hybrid
// work starts pessimistic — its first attempt is the fallback — and now and
// then a burst of Updates starts optimistically again, to notice when
// contention drops.
//
//	optimistic first attempt ─fails───▶ fail += (1 − fail)/256
//	                         ─commits─▶ fail −= fail/256      ─▶ fail > 10% ⇒ start pessimistic
//	while pessimistic, every probeEvery-th Update begins a probe burst: the
//	next probeBurst (48) Updates start optimistic; the first-attempt outcomes
//	of all but the first probeDrain (24) are counted, and if under 10% failed
//	Hybrid starts optimistic again; else probeEvery quadruples (512 … 65536)
//
// A burst, not a lone probe, because an optimistic attempt among pessimistic
// transactions fails on their held locks — at hot=100 on the contention
// sweep lone probes failed 7–15% while optimistic first attempts among
// their own kind failed under 1%, and Hybrid stayed pessimistic for good.
// The drain is as long as it is so that the pessimistic transactions in
// flight when the burst begins (one per worker: 16 on the sweep) finish
// first. Bursts are few — spacing quadruples while they fail — because
// where optimistic first attempts are hopeless each burst floods the hot
// keys with failing attempts (measured at hot=1: five bursts in 20,000
// transactions cost a tenth of the throughput). The average moves slowly
// (27 failures in a row from zero cross 10%) so that a short cascade — a
// committer descheduled while holding its locks — does not flip a workload
// whose first attempts fail 1% of the time. One line, 10%, both ways: the
// two measurements differ (a long average to enter, a burst to leave,
// bursts at least 512 Updates apart), which is hysteresis enough; a lower
// line to leave kept Hybrid pessimistic at hot=100, where bursts see 3–8%
// and steady optimistic first attempts about 1%.
//
// Why 10%, half the guide's 20% for choosing Pessimistic up front: a failed
// optimistic first attempt costs its own work, and its pessimistic retry
// then holds its locks for a whole transaction, failing other first
// attempts. On the contention sweep (BenchmarkContention) that cascade made
// Hybrid slower than Pessimistic from about 10% failed first attempts up,
// and slower than both Pessimistic and Optimistic — by 3× — when nearly all
// failed.
type hybridMemory struct {
	fail        atomic.Uint32 // the failure average, in 1/failOne
	pessimistic atomic.Bool   // new Hybrid work starts pessimistically
	updates     atomic.Uint64 // Updates begun while pessimistic: the probe clock
	probeEvery  atomic.Uint32 // Updates from one burst to the next (0: minProbeEvery)
	burst       atomic.Int32  // Updates of the running burst still to start optimistic
	// probed and probeFailed count the running burst's measured outcomes.
	probed, probeFailed atomic.Uint32
}

const (
	failOne                = 1 << 16
	failShift              = 8 // each first attempt weighs 1/256 in the average
	hybridPessimisticAbove = failOne / 10
	probeBurst             = 48
	probeDrain             = 24 // a burst's first Updates meet the pessimists' locks: not counted
	minProbeEvery          = 512
	maxProbeEvery          = 1 << 16
)

// start decides how a new Hybrid Update starts; measured says its first
// attempt's outcome is to be reported with firstAttempt.
func (h *hybridMemory) start() (pessimistic, measured bool) {
	if !h.pessimistic.Load() {
		return false, true
	}
	for {
		b := h.burst.Load()
		if b <= 0 {
			break
		}
		if h.burst.CompareAndSwap(b, b-1) {
			return false, b <= probeBurst-probeDrain
		}
	}
	every := uint64(max(h.probeEvery.Load(), minProbeEvery))
	if h.updates.Add(1)%every == 0 {
		h.burst.Store(probeBurst - 1) // this Update is the burst's first
		return false, false
	}
	return true, false
}

// firstAttempt records how a measured optimistic first attempt ended.
func (h *hybridMemory) firstAttempt(failed bool) {
	if h.pessimistic.Load() {
		h.probeEnded(failed)
		return
	}
	for {
		old := h.fail.Load()
		f := old - old>>failShift
		if failed {
			f = old + (failOne-old)>>failShift
		}
		if h.fail.CompareAndSwap(old, f) {
			if f > hybridPessimisticAbove {
				h.probeEvery.Store(minProbeEvery)
				h.probed.Store(0)
				h.probeFailed.Store(0)
				h.pessimistic.Store(true)
			}
			return
		}
	}
}

// probeEnded counts a burst's measured outcome; the last one decides.
func (h *hybridMemory) probeEnded(failed bool) {
	if failed {
		h.probeFailed.Add(1)
	}
	if h.probed.Add(1) != probeBurst-probeDrain {
		return
	}
	rate := float64(h.probeFailed.Swap(0)) / (probeBurst - probeDrain)
	h.probed.Store(0)
	if rate < float64(hybridPessimisticAbove)/failOne {
		h.fail.Store(uint32(rate * failOne))
		h.pessimistic.Store(false)
		return
	}
	h.probeEvery.Store(min(4*max(h.probeEvery.Load(), minProbeEvery), maxProbeEvery))
}

// adaptiveSteer chooses how new Adaptive transactions run, among three
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
//	  - best wastes ≥ lowConflict (5%) per commit over its stretch — below
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
type adaptiveSteer struct {
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

// The arms of Adaptive.
const (
	adaptiveMOCC        = 0 // hot keys locked at read time, retrospective lock list
	adaptiveOptimistic  = 1 // temperature learned, not acted on: plain OCC
	adaptivePessimistic = 2 // plain strict 2PL
	adaptiveArms        = 3
)

// arm returns the arm new Adaptive transactions run now.
func (s *adaptiveSteer) arm() int { return int(s.cur.Load() >> 32 & 0xff) }

// events is the running total of wasted work, in 1/lockShare attempts:
// failed attempts of steered Updates and every lock wait of the DB count a
// whole attempt each (a wait costs a park, a wake-up and a deadlock-graph
// update — about a short attempt, measured on the contention sweep); a hot
// lock MOCC took counts 1/lockShare (acquire, release and a read of the
// latest version cost about an eighth of a short transaction even when the
// lock is free — at hot=100 on the sweep, where few of them wait, they made
// MOCC a third slower than plain optimistic reads).
func (s *adaptiveSteer) events(db *DB) uint64 {
	return lockShare*(s.failures.Load()+db.locks.Stats().Waits) + s.hotLocks.Load()
}

// lockShare is how many read-time locks cost one wasted attempt.
const lockShare = 8

// noteHotLock counts a lock MOCC takes at read or write time.
func (s *adaptiveSteer) noteHotLock() { s.hotLocks.Add(1) }

// observe records the end of an attempt of a steered Update.
func (s *adaptiveSteer) observe(db *DB, committed bool) {
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
			if s.costly(db, n) {
				s.close(db, c)
			}
			return
		case !s.cur.CompareAndSwap(c, c+1):
			continue
		}
		switch n++; {
		case n == steerWarm:
			s.failedAtWarm.Store(s.failures.Load())
			s.atWarm.Store(s.events(db))
			s.warmed.Store(true)
		case n == steerPhase:
			s.end(db, c+1, n, false)
		case s.costly(db, n):
			s.close(db, c+1)
		}
		return
	}
}

// costly reports whether the running phase, n commits in, is a measured
// probe phase already wasting more than giveUp per measured commit.
func (s *adaptiveSteer) costly(db *DB, n uint32) bool {
	limit := s.giveUp.Load()
	if limit == 0 || !s.warmed.Load() || n < steerWarm+steerMinMeasured {
		return false
	}
	return (s.events(db)-s.atWarm.Load())*(costOne/lockShare) > limit*uint64(n-steerWarm)
}

// close ends the phase c early, unless it has ended already.
func (s *adaptiveSteer) close(db *DB, c uint64) {
	closing := c&^0xffffffff | steerPhase
	if s.cur.CompareAndSwap(c, closing) {
		s.end(db, closing, uint32(c), true)
	}
}

// end closes the phase whose word is c — its counter at steerPhase, so no
// one else counts in it any more — after n commits, and starts the next.
func (s *adaptiveSteer) end(db *DB, c uint64, n uint32, early bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p phaseCost
	if s.warmed.Load() && n > steerWarm {
		p = phaseCost{
			wasted:  float64(s.events(db)-s.atWarm.Load()) / lockShare,
			failed:  float64(s.failures.Load() - s.failedAtWarm.Load()),
			commits: float64(n - steerWarm),
		}
	}
	sc := &s.mu.sched
	next := sc.end(int(c>>32&0xff), p, early, db.window.Rate())
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

// costSchedule decides which arm each phase runs (see adaptiveSteer). It
// is a plain state machine, driven by end, so tests can drive it directly.
type costSchedule struct {
	best     int
	probing  bool                    // a probe block is running (else best is exploited)
	probe    int                     // the probe block's arm
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
func (sc *costSchedule) end(arm int, p phaseCost, early bool, rate float64) int {
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

func (sc *costSchedule) add(arm int, p phaseCost) {
	s := &sc.sum[arm]
	s.wasted += p.wasted
	s.failed += p.failed
	s.commits += p.commits
}

// measuring reports whether the next phase is a measured probe phase.
func (sc *costSchedule) measuring() bool { return sc.probing && sc.block >= steerProbeWarm }

// challenger picks the arm to probe now, or -1 (see adaptiveSteer).
func (sc *costSchedule) challenger(rate float64) int {
	if sc.cost(sc.best)-steerSlack < lowConflict {
		return -1
	}
	due := func(a int) bool { return a != sc.best && sc.from[a] <= sc.phase }
	b := sc.sum[sc.best]
	failing := b.commits > 0 && b.failed/b.commits >= lowConflict
	switch {
	case due(adaptiveOptimistic):
		return adaptiveOptimistic
	case rate > highConflict && due(adaptivePessimistic):
		return adaptivePessimistic
	case due(adaptiveMOCC) && (sc.best != adaptiveOptimistic || failing):
		return adaptiveMOCC
	}
	return -1
}

// cost is an arm's measured waste per commit, plus steerSlack.
func (sc *costSchedule) cost(arm int) float64 {
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
func (sc *costSchedule) backOff(arm, wait int) {
	sc.wait[arm] = wait
	sc.from[arm] = sc.phase + wait
}

// steering is the DB's pair of memories.
type steering struct {
	hybrid   hybridMemory
	adaptive adaptiveSteer
}

// steered returns the memory that learns from an Update with these
// options: Hybrid's, or Adaptive's when its threshold lies strictly between
// the two oracle ends (which must behave exactly as Pessimistic and as
// Optimistic). Read-only work is not steered.
func (db *DB) steered(opts *TxOptions) (*hybridMemory, *adaptiveSteer) {
	if opts != nil && opts.ReadOnly {
		return nil, nil
	}
	switch s, th := db.requestedStrategy(opts), db.cfg.AdaptiveThreshold; {
	case s == Hybrid:
		return &db.window.steer.hybrid, nil
	case s == Adaptive && th > 0 && th < AdaptiveNever:
		return nil, &db.window.steer.adaptive
	}
	return nil, nil
}
