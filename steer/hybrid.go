package steer

import "sync/atomic"

// hybrid.go and adaptive.go are the measured half of Hybrid's and
// Adaptive's choices. Each DB remembers how its recent Hybrid and Adaptive
// work went, and new transactions start in the mode that memory favours. Every mode is a
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

// Hybrid is Hybrid's "try optimistic first, fall back to
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
type Hybrid struct {
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

// Start decides how a new Hybrid Update starts; measured says its first
// attempt's outcome is to be reported with FirstAttempt.
func (h *Hybrid) Start() (pessimistic, measured bool) {
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

// FirstAttempt records how a measured optimistic first attempt ended.
func (h *Hybrid) FirstAttempt(failed bool) {
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
func (h *Hybrid) probeEnded(failed bool) {
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

// FailRate is the moving average of failed optimistic first attempts.
func (h *Hybrid) FailRate() float64 { return float64(h.fail.Load()) / failOne }

// StartsPessimistic reports whether new Hybrid work starts pessimistically.
func (h *Hybrid) StartsPessimistic() bool { return h.pessimistic.Load() }
