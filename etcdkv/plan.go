package etcdkv

import (
	"bytes"
	"slices"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
)

// retryPlan is how a retry runs. A Hybrid retry: strict 2PL, first
// locking, in key order, what the failed attempt touched. An optimistic
// retry after a commit that failed a validation: at the revision where it
// failed, with what it read of the compared keys (seen) — so it does not
// read the old version again (no doomed retry, as locally), and those
// reads cost no request (etcd's STM prefetches the same way).
type retryPlan struct {
	pre  []prelock
	seen *seenAt
}

// seenAt is what a failed commit Txn read of its compared keys, at the
// revision it failed at (explain.go); a nil value is an absent key.
type seenAt struct {
	rev int64
	kvs map[string]*mvccpb.KeyValue
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
		if t.failedAt != nil && !t.locking {
			return &retryPlan{seen: t.failedAt}
		}
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
	if p.seen != nil {
		if !t.strict2PL() {
			t.snap, t.seen = p.seen.rev, p.seen.kvs
		}
		return nil
	}
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
