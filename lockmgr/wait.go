package lockmgr

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// block waits for queued request r: OnWait (note, if set), the immediate
// deadlock search, then waitFor. Whatever ends it, r leaves the queue: if anything in between
// panics (an OnDeadlock callback runs in the search), the deferred cleanup
// withdraws r, which otherwise would stay queued and later be granted to
// nobody. A request granted before the panic stays held; ReleaseAll frees
// it.
func (m *Manager) block(ctx context.Context, r *request, timeout time.Duration, note *waitNote) error {
	settled := false
	defer func() {
		if !settled {
			m.finishWait(r, errAbandoned, 0)
		}
	}()
	if note != nil {
		m.opts.OnWait(note.key, note.end, note.isRange)
	}
	m.afterEnqueue(r.txn)
	err := m.waitFor(ctx, r, timeout)
	settled = true
	return err
}

// errAbandoned is the cause recorded for a request withdrawn by a panic;
// nobody receives it.
var errAbandoned = errors.New("txkv: lock request abandoned")

// waitFor blocks until r leaves the waiting state or one of timeout, ctx
// and Close fires, then settles the outcome under the lock (finishWait).
func (m *Manager) waitFor(ctx context.Context, r *request, timeout time.Duration) error {
	if h := m.hooks.waiting; h != nil {
		h(r.txn)
	}
	var timerC <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timerC = t.C
	}
	var cause error
	select {
	case <-r.ready:
	case <-timerC:
		cause = ErrLockTimeout
	case <-ctx.Done():
		cause = ctx.Err()
	case <-m.done:
		cause = ErrClosed
	}
	err := m.finishWait(r, cause, timeout)
	m.stats.recordWait(time.Since(r.queued), err)
	if h := m.hooks.waited; h != nil {
		h(r.txn, err)
	}
	return err
}

// finishWait decides the one outcome of a wait. If the request was granted
// or aborted meanwhile, that outcome wins over the timer or ctx that woke us;
// otherwise the request is removed and the queue behind it re-examined. A
// timeout becomes a *LockError naming whom the request was waiting for.
func (m *Manager) finishWait(r *request, cause error, timeout time.Duration) error {
	if r.isRange {
		m.lockAll()
		defer m.unlockAll()
		if r.state == stateWaiting {
			if cause == ErrLockTimeout {
				cause = m.labeled(m.timeoutErrorLocked(r, timeout))
			}
			m.removeRangeWaiterLocked(r)
			m.rescanAllLocked()
		}
		return r.outcome(cause)
	}
	sh := r.head.sh
	sh.mu.Lock()
	rescan := false
	if r.state == stateWaiting {
		if cause == ErrLockTimeout {
			// Labelled under the shard lock, while the holders it names
			// still hold: ReleaseAll forgets a label only after its locks.
			cause = m.labeled(m.timeoutErrorLocked(r, timeout))
		}
		m.removePointWaiterLocked(r)
		rescan = m.rt.waiting > 0
	}
	err := r.outcome(cause)
	sh.mu.Unlock()
	if rescan {
		m.rescanRanges()
	}
	return err
}

// timeoutErrorLocked is the error of waiting request r whose timeout ran
// out: whom it waits for, from the edges it has now. The caller holds r's
// shard (a point) or every shard (a range).
func (m *Manager) timeoutErrorLocked(r *request, timeout time.Duration) *LockError {
	key, end, isRange := r.target()
	var edges []deadlock.Edge
	if isRange {
		edges = m.rangeEdgesLocked(r, nil)
	} else {
		edges = m.pointBlockersLocked(r, r.prev, nil)
	}
	return newLockError(ErrLockTimeout, r.txn, Target{Key: key, End: end, Range: isRange}, r.mode, edges, timeout)
}

// outcome maps a settled request to Acquire's result; cause is what woke a
// request that was still waiting when it was removed.
func (r *request) outcome(cause error) error {
	switch r.state {
	case stateGranted:
		return nil
	case stateAborted:
		return r.err
	}
	if cause == nil {
		cause = errors.New("txkv: internal error: lock wait ended without a cause")
	}
	r.state = stateCancelled
	return cause
}

// removePointWaiterLocked takes waiting r out of its queue and the graph
// (timeout, cancel, deadlock victim, Close) and re-examines the waiters that
// were behind it.
func (m *Manager) removePointWaiterLocked(r *request) {
	h := r.head
	next := r.next
	h.waiters.remove(r)
	r.prevX = nil
	m.graph.Remove(r.txn)
	if next != nil {
		m.refreshHeadLocked(h, next, false)
	}
	h.sh.maybeFreeHeadLocked(h)
}

// removeRangeWaiterLocked takes waiting r out of the table and the graph.
func (m *Manager) removeRangeWaiterLocked(r *request) {
	m.rt.reqs = slices.DeleteFunc(m.rt.reqs, func(y *request) bool { return y == r })
	m.rt.waiting--
	m.graph.Remove(r.txn)
}
