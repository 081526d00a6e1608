package etcdkv

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
)

// ScanForUpdate locks exclusively, in key order, the keys of [start, end)
// and returns them with their values, at most limit (<= 0: no limit), as
// locally: the keys it returns are locked, not the range (a range lock
// would serialize SKIP LOCKED workers). With SkipLocked a key whose lock
// is not free now is skipped (the job-queue pattern): the claims of a
// batch are nested per-key Txns in one request. With NoWait the first
// unavailable key fails the call.
func (t *tx) ScanForUpdate(start, end []byte, limit int, opts ...txkv.LockOption) ([]txkv.KV, error) {
	if err := t.checkExplicit("ScanForUpdate"); err != nil {
		return nil, err
	}
	if emptyRange(start, end) {
		return nil, nil
	}
	r := t.lockRequest(opts)
	var out []txkv.KV
	from := start
	for limit <= 0 || len(out) < limit {
		cands, more, err := t.candidates(from, end, candidateBatch(limit, len(out)))
		if err != nil {
			return nil, err
		}
		var kvs []txkv.KV
		if r.Policy == lockmgr.SkipLocked {
			kvs, err = t.claimSkipLocked(cands, limit, len(out))
		} else {
			kvs, err = t.claimEach(cands, limit, len(out), r.Policy, r.Timeout)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, kvs...)
		if !more || len(cands) == 0 {
			break
		}
		from = append(bytes.Clone(cands[len(cands)-1]), 0) // the smallest key after the last
	}
	return out, nil
}

// candidateBatch is how many keys ScanForUpdate reads before it claims
// them: a few more than it still needs (SKIP LOCKED skips the head of a
// busy queue), everything if there is no limit.
func candidateBatch(limit, have int) int {
	if limit <= 0 {
		return 256
	}
	return max(32, 2*(limit-have))
}

// candidates lists up to n keys of [start, end) in the latest committed
// state, with this transaction's own writes applied, and whether the range
// may hold more after them.
func (t *tx) candidates(start, end []byte, n int) (keys [][]byte, more bool, err error) {
	from, to := t.e.ks.dataRange(start, end)
	resp, err := t.e.cli.Get(t.ctx, from, clientv3.WithRange(to), clientv3.WithKeysOnly(), clientv3.WithLimit(int64(n)))
	if err != nil {
		return nil, false, t.mapErr(err)
	}
	if resp.More && len(resp.Kvs) > 0 {
		to = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00" // own writes only up to what was read
	}
	set := map[string]bool{}
	for _, kv := range resp.Kvs {
		set[string(kv.Key)] = true
	}
	for k, w := range t.writes {
		if k >= from && k < to {
			set[k] = w != nil
		}
	}
	for _, k := range sortedKeys(set) {
		if set[k] {
			keys = append(keys, bytes.Clone(t.e.ks.user([]byte(k))))
		}
	}
	return keys, resp.More, nil
}

// appendClaimed reads key, which this transaction has just locked, and
// appends it to out unless it was deleted meanwhile.
func (t *tx) appendClaimed(out []txkv.KV, key []byte) ([]txkv.KV, error) {
	kv, ok, err := t.readClaimed(key)
	if err != nil {
		return nil, err
	}
	if ok {
		out = append(out, kv)
	}
	return out, nil
}

// claimEach locks the candidates one by one (Block or NoWait) and reads
// them under the lock; a key deleted meanwhile is left out.
func (t *tx) claimEach(cands [][]byte, limit, have int, p lockmgr.WaitPolicy, timeout time.Duration) ([]txkv.KV, error) {
	var out []txkv.KV
	for _, key := range cands {
		if limit > 0 && have+len(out) >= limit {
			break
		}
		if err := t.lock(newRequest(key, nil, false, lockmgr.Exclusive), p, timeout); err != nil {
			return nil, err
		}
		var err error
		if out, err = t.appendClaimed(out, key); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readClaimed reads a key just locked; false if it is gone.
func (t *tx) readClaimed(key []byte) (txkv.KV, bool, error) {
	v, ver, err := t.readLatest(key)
	if errors.Is(err, txkv.ErrNotFound) {
		return txkv.KV{}, false, nil
	}
	if err != nil {
		return txkv.KV{}, false, err
	}
	return txkv.KV{Key: key, Value: bytes.Clone(v), Version: ver}, true, nil
}

// claimSkipLocked claims candidates under SKIP LOCKED. Keys whose request
// the fast compares can decide (no range entry anywhere, this transaction
// holds nothing on the key) are claimed in one request: one nested Txn per
// key, If its queue is empty Then put the entry and read the value. The
// others (and, when range entries exist, the keys the nested Txns refused)
// take the full rule one by one, without waiting.
func (t *tx) claimSkipLocked(cands [][]byte, limit, have int) ([]txkv.KV, error) {
	var out []txkv.KV
	var slow [][]byte
	for len(cands) > 0 && (limit <= 0 || have+len(out) < limit) {
		n := min(len(cands), t.e.opts.MaxTxnOps-1)
		if limit > 0 {
			n = min(n, limit-have-len(out))
		}
		kvs, refused, err := t.claimBatch(cands[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, kvs...)
		slow = append(slow, refused...)
		cands = cands[n:]
	}
	for _, key := range slow {
		if limit > 0 && have+len(out) >= limit {
			break
		}
		err := t.lock(newRequest(key, nil, false, lockmgr.Exclusive), lockmgr.SkipLocked, 0)
		if errors.Is(err, txkv.ErrLockNotAvailable) {
			continue // skipped: someone holds it
		}
		if err != nil {
			return nil, err
		}
		if out, err = t.appendClaimed(out, key); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b txkv.KV) int { return bytes.Compare(a.Key, b.Key) })
	return out, nil
}

// claimBatch claims keys in one request of nested Txns (see
// claimSkipLocked); it returns what it claimed and the keys the full rule
// must decide.
func (t *tx) claimBatch(keys [][]byte) (out []txkv.KV, slow [][]byte, err error) {
	rf, rt := t.e.ks.allRanges()
	ops := []clientv3.Op{clientv3.OpGet(rf, clientv3.WithRange(rt), clientv3.WithCountOnly())}
	var reqs []*entry
	var sess *concurrency.Session
	for _, key := range keys {
		req := newRequest(key, nil, false, lockmgr.Exclusive)
		if t.covered(req) {
			kv, ok, err := t.readClaimed(key)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				out = append(out, kv)
			}
			continue
		}
		sess, err = t.prepare(req)
		if err != nil {
			return nil, nil, err
		}
		if req.base > 0 {
			slow = append(slow, key)
			continue
		}
		req.granted = true // put only if the queue is free
		put := clientv3.OpPut(req.key, req.value(), clientv3.WithLease(sess.Lease()))
		ops = append(ops, clientv3.OpTxn(t.fastCompares(req), []clientv3.Op{put, clientv3.OpGet(t.e.ks.data(key))}, nil))
		reqs = append(reqs, req)
	}
	if len(reqs) == 0 {
		return out, slow, nil
	}
	resp, err := t.e.cli.Txn(t.ctx).Then(ops...).Commit()
	if err != nil {
		return nil, nil, t.leaseLost(err, sess, reqs[0])
	}
	rangesExist := resp.Responses[0].GetResponseRange().GetCount() > 0
	for i, req := range reqs {
		r := resp.Responses[i+1].GetResponseTxn()
		if !r.GetSucceeded() {
			if rangesExist {
				slow = append(slow, req.start) // refused by a range entry, maybe not overlapping
			}
			continue
		}
		t.granted(req, resp.Header.Revision)
		if kv, ok := t.claimedValue(req.start, r.Responses[1].GetResponseRange().GetKvs()); ok {
			out = append(out, kv)
		}
	}
	return out, slow, nil
}

// claimedValue is the value of a key claimed in a batch, read in the same
// request as its lock; the transaction's own write wins.
func (t *tx) claimedValue(key []byte, kvs []*mvccpb.KeyValue) (txkv.KV, bool) {
	if w, ok := t.writes[t.e.ks.data(key)]; ok {
		if w == nil {
			return txkv.KV{}, false
		}
		return txkv.KV{Key: key, Value: bytes.Clone(*w)}, true
	}
	if len(kvs) == 0 {
		return txkv.KV{}, false
	}
	t.e.stats.reads.Add(1)
	return txkv.KV{Key: key, Value: kvs[0].Value, Version: uint64(kvs[0].ModRevision)}, true
}
