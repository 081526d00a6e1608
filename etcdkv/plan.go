package etcdkv

import (
	"bytes"
	"slices"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
)

// retryPlan is how a Hybrid retry runs: strict 2PL, first locking, in key
// order, what the failed attempt touched.
type retryPlan struct {
	pre []prelock
}

type prelock struct {
	key  []byte
	mode lockmgr.Mode
}

// nextPlan plans the retry of a failed attempt. Only Hybrid and Adaptive
// change how the retry runs: an optimistic attempt is retried locking,
// exclusive on what it wrote and shared on what it only read, as the local
// Hybrid does; a locking attempt (it lost a deadlock or a lock) is retried
// locking with nothing taken first — its reads were locked, not recorded.
func (t *tx) nextPlan() *retryPlan {
	if t.opts.Strategy != txkv.Hybrid && t.opts.Strategy != txkv.Adaptive {
		return nil
	}
	if t.locking {
		return &retryPlan{}
	}
	modes := map[string]lockmgr.Mode{}
	for k := range t.reads {
		modes[k] = lockmgr.Shared
	}
	for k := range t.writes {
		modes[k] = lockmgr.Exclusive
	}
	p := &retryPlan{}
	for _, k := range sortedKeys(modes) {
		p.pre = append(p.pre, prelock{key: bytes.Clone(t.e.ks.user([]byte(k))), mode: modes[k]})
	}
	slices.SortFunc(p.pre, func(a, b prelock) int { return bytes.Compare(a.key, b.key) })
	return p
}

// runPlan makes the transaction a locking one and queues for the plan's
// locks in one request (lockBatch); a wait past machineryWait is a
// retryable conflict.
func (t *tx) runPlan(p *retryPlan) error {
	t.locking = true
	reqs := make([]*entry, len(p.pre))
	for i, pl := range p.pre {
		reqs[i] = newRequest(pl.key, nil, false, pl.mode)
	}
	if err := t.asConflict(t.lockBatch(reqs, t.machineryWait())); err != nil {
		t.rollback()
		return err
	}
	return nil
}
