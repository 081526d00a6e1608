package etcdkv

import (
	"slices"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A commit Txn that fails is explained from what its Else branch read
// back, at the revision where it failed: the compared keys' revisions
// (which validation failed), the queues of the written keys it has not
// locked (is another transaction's lock in the way, so the commit should
// queue for locks), and its own lock entries (was one lost). Deciding what
// to do and naming the conflict then costs no round trip; without it a
// failed optimistic commit made up to six more (etcd's STM prefetches the
// keys of a failed commit the same way). If the reads would take the Else
// over etcd's --max-txn-ops, they are left out and the failure is
// explained by reading again, as before.
//
//	Else [the range entries]            (commitTxn: only with unlocked writes)
//	     Get(k)                         for every compared key, in key order
//	                                    (with its value: the retry reads it)
//	     Get(queue of k) keys only      for every unlocked written key
//	     Get(e) keys only               for every lock entry held

// explainLayout says where in a commit Txn's Else the explaining reads are.
type explainLayout struct {
	at     int      // index of the first; -1: not included
	keys   []string // compared keys, in order
	want   map[string]func(rev int64) bool
	queues [][]byte // unlocked written keys, in order
}

// addExplain appends the explaining reads to c.els, if they fit.
func (t *tx) addExplain(c *commitTxn, unlocked [][]byte) {
	keys, want := t.wantRevs()
	n := len(c.els) + len(keys) + len(unlocked) + len(t.locks.held)
	c.explain = explainLayout{at: -1}
	if n > t.e.opts.MaxTxnOps {
		return
	}
	c.explain = explainLayout{at: len(c.els), keys: keys, want: want, queues: unlocked}
	for _, k := range keys {
		c.els = append(c.els, clientv3.OpGet(k)) // with the value: the retry reads it (retryPlan.seen)
	}
	for _, k := range unlocked {
		from, to := t.e.ks.queue(k)
		c.els = append(c.els, clientv3.OpGet(from, clientv3.WithRange(to), clientv3.WithKeysOnly()))
	}
	for i := range t.locks.held {
		c.els = append(c.els, clientv3.OpGet(t.locks.held[i].key, clientv3.WithKeysOnly()))
	}
}

// failure is a failed commit explained (see above).
type failure struct {
	lost     error  // a held lock entry gone or replaced: its lockLost error
	lockedBy []byte // the first unlocked written key another transaction's entry is on
	changed  string // the first compared key no longer as required ("": none)
}

// explained reads the failure of a commit Txn from its response; ok is
// false if the Txn carried no explaining reads.
func (t *tx) explained(resp *clientv3.TxnResponse, c *commitTxn) (f failure, ok bool) {
	at := c.explain.at
	if resp == nil || at < 0 || len(resp.Responses) < at+len(c.explain.keys)+len(c.explain.queues)+len(t.locks.held) {
		return failure{}, false
	}
	rs := resp.Responses[at:]
	seen := &seenAt{rev: resp.Header.Revision, kvs: make(map[string]*mvccpb.KeyValue, len(c.explain.keys))}
	for i, k := range c.explain.keys {
		if !c.explain.want[k](modRevision(rs[i])) && f.changed == "" {
			f.changed = k
		}
		seen.kvs[k] = nil
		if kvs := rs[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
			seen.kvs[k] = kvs[0]
		}
	}
	t.failedAt = seen
	rs = rs[len(c.explain.keys):]
	for i, k := range c.explain.queues {
		if f.lockedBy == nil && t.othersIn(rs[i].GetResponseRange().GetKvs()) {
			f.lockedBy = k
		}
	}
	rs = rs[len(c.explain.queues):]
	for i := range t.locks.held {
		h := &t.locks.held[i]
		if kvs := rs[i].GetResponseRange().GetKvs(); len(kvs) == 0 || kvs[0].CreateRevision != h.rev {
			f.lost = lockLost(t.id, h)
			break
		}
	}
	return f, true
}

// othersIn reports whether kvs, a queue's entries, hold one that is not
// this transaction's.
func (t *tx) othersIn(kvs []*mvccpb.KeyValue) bool {
	for _, kv := range kvs {
		if !slices.ContainsFunc(t.locks.held, func(h entry) bool { return h.key == string(kv.Key) }) {
			return true
		}
	}
	return false
}

// modRevision is the ModRevision a keys-only Get read (0: absent).
func modRevision(r *etcdserverpb.ResponseOp) int64 {
	if kvs := r.GetResponseRange().GetKvs(); len(kvs) > 0 {
		return kvs[0].ModRevision
	}
	return 0
}
