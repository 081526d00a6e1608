package etcdkv

import (
	"bytes"
	"errors"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/txn"
)

// commit ends the transaction. A read-only one read one revision and needs
// no validation (if it holds locks, one request releases them and checks
// they were not lost). Otherwise one etcd Txn carries:
//
//	If   ModRevision(k) == seen        for every key read (Serializable,
//	                                   unless strict 2PL: its locks kept them)
//	     ModRevision([from,to)) < S+1  for every scanned range: no key in it
//	                                   created or changed after S
//	                                   (a deleted key is caught by the
//	                                   per-key compare: a range compare
//	                                   cannot see what is gone)
//	     ModRevision(k) < S+1          for every written key (Snapshot:
//	                                   first committer wins)
//	     ModRevision(k) == v           for every PutIfVersion
//	     CreateRevision(e) == granted  for every lock entry held (fencing)
//	     CreateRevision(queue) == 0    for every written key not locked X by
//	                                   this transaction: no other
//	                                   transaction's entry on it (around
//	                                   this one's own entries)
//	     CreateRevision(r/…) == 0      no other transaction's range entry,
//	                                   if there are such written keys
//	     CreateRevision(record) == 0   the transaction record (record.go)
//	Then the writes, the record, and the deletes of the lock entries
//	     (release)
//	Else the range entries, to tell a range lock in the way from one
//	     elsewhere
//
// Under Serializable blind writes are not compared: the transaction
// serializes at its commit revision, where every read is still current.
// If range entries exist but none overlaps an unlocked written key, the
// commit is sent again comparing only that no range entry was created
// since (ModRevision(r/…) < R+1).
func (t *tx) commit() error {
	if err := t.usable(); err != nil {
		return err
	}
	t.done = true
	if len(t.writes) == 0 {
		return t.commitReadOnly()
	}
	rec, err := t.e.newRecord(t.ctx)
	if err != nil {
		return t.abort(t.mapErr(err))
	}
	var rcmps []clientv3.Cmp // nil: no other transaction's range entry at all
	var unlocked [][]byte
	var last *failure // the last failed Txn, explained
	for round := 0; ; round++ {
		unlocked = t.unlockedWrites()
		c := t.commitTxn(unlocked, rcmps, rec)
		if err := checkTxnSize(len(c.cmps), c.writes+1, t.e.opts); err != nil {
			return t.abort(err)
		}
		resp, applied, err := t.send(&rec, &c)
		if err != nil {
			return t.abort(t.commitErr(err))
		}
		if applied {
			t.committed(c.writes, c.released)
			return nil
		}
		// Not applied. After a resolution (resp nil) the record is fenced
		// aborted: the commit cannot be sent again under it.
		if resp == nil {
			break
		}
		f, ok := t.explained(resp, &c)
		if !ok {
			f = t.explainByReading(unlocked)
		}
		last = &f
		if len(unlocked) == 0 || round >= 3 || f.changed != "" || f.lost != nil {
			break // a validation failed or a lock was lost: no use waiting for locks
		}
		others, inWay := t.rangesInWay(resp.Responses[0].GetResponseRange().GetKvs(), unlocked)
		if inWay != nil || f.lockedBy != nil {
			// Another transaction holds or awaits a lock on the write set:
			// as locally, the commit queues for exclusive locks on it, in
			// key order, and is sent again.
			if err := t.lockWrites(unlocked); err != nil {
				return t.abort(err)
			}
			continue
		}
		if !others {
			break // the failure is a validation's
		}
		rf, rt := t.e.ks.allRanges()
		rcmps = []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(rf).WithRange(rt), "<", resp.Header.Revision+1)}
	}
	t.e.stats.conflicts.Add(1)
	return t.abort(t.conflict(unlocked, last))
}

// commitTxn is the parts of one commit Txn.
type commitTxn struct {
	cmps      []clientv3.Cmp
	then, els []clientv3.Op
	writes    int  // the first writes ops of then are the writes; then the record's
	released  bool // then ends with the deletes of the lock entries
	recCmp    int  // the index in cmps of the record's compare
	explain   explainLayout
}

// setRecord makes the commit Txn create rec instead of the record it had.
func (c *commitTxn) setRecord(rec record) {
	c.cmps[c.recCmp] = rec.cmp()
	c.then[c.writes] = rec.put(recordCommitted)
}

// commitTxn builds the commit Txn; rcmps replaces the "no other range
// entry" compares when range entries exist elsewhere.
func (t *tx) commitTxn(unlocked [][]byte, rcmps []clientv3.Cmp, rec record) commitTxn {
	c := commitTxn{cmps: append(t.compares(), t.fencing()...)}
	for _, k := range unlocked {
		c.cmps = append(c.cmps, t.queueFree(k)...)
	}
	if len(unlocked) > 0 {
		if rcmps == nil {
			rcmps = t.rangesFree()
		}
		c.cmps = append(c.cmps, rcmps...)
		rf, rt := t.e.ks.allRanges()
		c.els = []clientv3.Op{clientv3.OpGet(rf, clientv3.WithRange(rt))}
	}
	t.addExplain(&c, unlocked)
	c.recCmp = len(c.cmps)
	c.cmps = append(c.cmps, rec.cmp())
	c.then = t.ops()
	c.writes = len(c.then)
	c.then = append(c.then, rec.put(recordCommitted))
	if rel := t.releaseOps(); len(rel) > 0 && len(c.then)+len(rel) <= t.e.opts.MaxTxnOps {
		c.then = append(c.then, rel...)
		c.released = true
	}
	return c
}

// lockWrites queues exclusive locks on keys (sorted) in one request and
// waits for them (lockBatch), at most machineryWait: past it the commit
// fails with a retryable conflict, not a lock timeout.
func (t *tx) lockWrites(keys [][]byte) error {
	reqs := make([]*entry, len(keys))
	for i, k := range keys {
		reqs[i] = newRequest(k, nil, false, lockmgr.Exclusive)
	}
	return t.asConflict(t.lockBatch(reqs, t.machineryWait()))
}

// machineryWait bounds the lock waits etcdkv makes on its own (an
// optimistic commit queuing for its write set, a Hybrid retry's first
// locks): the transaction's lock timeout, but at most commitLockWait. A
// deadlock across handles through such a wait is then broken by a retry.
func (t *tx) machineryWait() time.Duration {
	if t.lockTimeout >= 0 && t.lockTimeout < commitLockWait {
		return t.lockTimeout
	}
	return commitLockWait
}

// commitLockWait: see machineryWait.
const commitLockWait = time.Second

// asConflict turns the lock timeout of a wait of etcdkv's own into a
// retryable *ConflictError naming the key.
func (t *tx) asConflict(err error) error {
	var le *txkv.LockError
	if !errors.Is(err, txkv.ErrLockTimeout) || !errors.As(err, &le) {
		return err
	}
	t.e.stats.conflicts.Add(1)
	return &txkv.ConflictError{TxID: t.id, Key: bytes.Clone(le.Target.Key), Reason: ReasonWriteLocked}
}

// committed counts a commit; released says the commit Txn deleted the lock
// entries, else they are released now.
func (t *tx) committed(writes int, released bool) {
	t.e.stats.commits.Add(1)
	t.e.stats.writes.Add(int64(writes))
	if released {
		t.locks.held = nil
	}
	t.release()
}

// abort ends a failed commit: the locks are released, err returned.
func (t *tx) abort(err error) error {
	t.e.stats.aborts.Add(1)
	t.release()
	return err
}

// commitReadOnly ends a transaction that wrote nothing. Its locks kept
// what it read: one request releases them If every one still existed (a
// lost one may have let a writer in), Else releases them anyway.
func (t *tx) commitReadOnly() error {
	if len(t.locks.held) == 0 {
		t.e.stats.commits.Add(1)
		t.e.reg.released(t.id)
		return nil
	}
	if len(t.locks.held) > t.e.opts.MaxTxnOps {
		if err := t.lostLock(); err != nil {
			return t.abort(err)
		}
		t.committed(0, false)
		return nil
	}
	rel := t.releaseOps()
	resp, err := t.e.cli.Txn(t.ctx).If(t.fencing()...).Then(rel...).Else(rel...).Commit()
	if err != nil {
		return t.abort(t.mapErr(err))
	}
	if !resp.Succeeded {
		err := t.lostLock()
		if err == nil {
			err = &txkv.ConflictError{TxID: t.id, Reason: ReasonLockLost}
		}
		return t.abort(err)
	}
	t.committed(0, true)
	return nil
}

// unlockedWrites returns the written user keys no exclusive lock of this
// transaction covers, in order: an optimistic write must find no other
// transaction's lock on them.
func (t *tx) unlockedWrites() [][]byte {
	var out [][]byte
	for _, k := range sortedKeys(t.writes) {
		key := t.e.ks.user([]byte(k))
		if !t.covered(newRequest(key, nil, false, lockmgr.Exclusive)) {
			out = append(out, bytes.Clone(key))
		}
	}
	return out
}

// queueFree compares that key's queue holds no entry but this
// transaction's own.
func (t *tx) queueFree(key []byte) []clientv3.Cmp {
	from, to := t.e.ks.queue(key)
	return emptyExcept(from, to, t.ownKeys(from, to))
}

// rangesFree compares that no range entry exists but this transaction's
// own.
func (t *tx) rangesFree() []clientv3.Cmp {
	from, to := t.e.ks.allRanges()
	return emptyExcept(from, to, t.ownKeys(from, to))
}

// ownKeys returns the keys of the held entries in [from, to), in order.
func (t *tx) ownKeys(from, to string) []string {
	var own []string
	for _, h := range t.locks.held {
		if h.key >= from && h.key < to {
			own = append(own, h.key)
		}
	}
	slices.Sort(own)
	return own
}

// emptyExcept compares that [from, to) holds no key but own (sorted): one
// range compare per gap between them. An empty range compares as a key
// with CreateRevision 0.
func emptyExcept(from, to string, own []string) []clientv3.Cmp {
	var cmps []clientv3.Cmp
	lo := from
	for _, k := range own {
		if lo < k {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(lo).WithRange(k), "=", 0))
		}
		lo = k + "\x00"
	}
	if lo < to {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(lo).WithRange(to), "=", 0))
	}
	return cmps
}

// rangesInWay reads the range entries a failed commit returned: whether
// any is another transaction's, and the first that overlaps a written key.
func (t *tx) rangesInWay(kvs []*mvccpb.KeyValue, keys [][]byte) (others bool, inWay *entry) {
	for _, kv := range kvs {
		e, ok := t.e.ks.parseEntry(kv)
		if !ok || t.ownsEntry(&e) {
			continue
		}
		others = true
		for _, k := range keys {
			if p := newRequest(k, nil, false, lockmgr.Exclusive); overlaps(&e, p) {
				return true, p
			}
		}
	}
	return others, nil
}

func (t *tx) ownsEntry(e *entry) bool {
	return slices.ContainsFunc(t.locks.held, func(h entry) bool { return h.key == e.key })
}

func (t *tx) compares() []clientv3.Cmp {
	var cmps []clientv3.Cmp
	if t.serializable() && !t.locking {
		for _, k := range sortedKeys(t.reads) {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", t.reads[k]))
		}
		for _, r := range t.ranges {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.from), "<", t.snap+1).WithRange(r.to))
		}
	} else if !t.serializable() {
		for _, k := range sortedKeys(t.writes) {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "<", t.snap+1))
		}
	}
	for _, k := range sortedKeys(t.expect) {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", t.expect[k]))
	}
	return cmps
}

func (t *tx) ops() []clientv3.Op {
	var ops []clientv3.Op
	for _, k := range sortedKeys(t.writes) {
		if w := t.writes[k]; w == nil {
			ops = append(ops, clientv3.OpDelete(k))
		} else {
			ops = append(ops, clientv3.OpPut(k, string(*w)))
		}
	}
	return ops
}

// lockedByOther returns the first of keys whose queue holds another
// transaction's entry, if any.
func (t *tx) lockedByOther(keys [][]byte) []byte {
	for _, k := range keys {
		from, to := t.e.ks.queue(k)
		resp, err := t.e.cli.Get(t.ctx, from, clientv3.WithRange(to), clientv3.WithKeysOnly())
		if err != nil {
			return nil
		}
		if t.othersIn(resp.Kvs) {
			return k
		}
	}
	return nil
}

// explainByReading explains a failed commit whose Txn could not carry the
// explaining reads (explain.go), by reading again: it reads only what the
// commit loop needs (which validation failed, whose locks are in the way).
func (t *tx) explainByReading(unlocked [][]byte) failure {
	var f failure
	if key, ok := t.changedKey(); ok {
		f.changed = key
		return f
	}
	f.lockedBy = t.lockedByOther(unlocked)
	return f
}

// conflict names why the commit failed in a *txkv.ConflictError (the first
// found, in the order the compares were made): from f, the last failed
// Txn explained at its revision, or (f nil, or it did not look) by reading
// the keys and ranges again. If nothing differs any more (the conflicting
// write was undone meanwhile), the error names no key.
func (t *tx) conflict(unlocked [][]byte, f *failure) error {
	if f == nil || f.lost == nil && f.changed == "" && f.lockedBy == nil {
		f = &failure{lost: t.lostLock(), lockedBy: t.lockedByOther(unlocked)}
		f.changed, _ = t.changedKey()
	}
	if f.lost != nil {
		return f.lost
	}
	if f.lockedBy != nil {
		return &txkv.ConflictError{TxID: t.id, Key: f.lockedBy, Reason: ReasonWriteLocked}
	}
	ce := &txkv.ConflictError{TxID: t.id}
	if key := f.changed; key != "" {
		ce.Key = t.e.ks.user([]byte(key))
		ce.Reason = txn.ReasonReadChanged
		if !t.serializable() {
			ce.Reason = txn.ReasonWriteChanged
		}
		if _, ok := t.expect[key]; ok {
			ce.Reason = "version-changed"
		}
		return ce
	}
	for _, r := range t.ranges {
		resp, err := t.e.cli.Get(t.ctx, r.from, clientv3.WithRange(r.to),
			clientv3.WithMinModRev(t.snap+1), clientv3.WithKeysOnly(), clientv3.WithLimit(1))
		if err == nil && len(resp.Kvs) > 0 {
			ce.Key = t.e.ks.user([]byte(r.from))
			ce.End = t.e.ks.user([]byte(r.to))
			if r.to == clientv3.GetPrefixRangeEnd(t.e.ks.dataPrefix()) {
				ce.End = nil
			}
			ce.Range, ce.Reason = true, txn.ReasonRangeChanged
			return ce
		}
	}
	ce.Reason = "changed"
	return ce
}

// changedKey returns the first compared key whose ModRevision is no longer
// what the commit required.
func (t *tx) changedKey() (string, bool) {
	keys, want := t.wantRevs()
	for len(keys) > 0 {
		n := min(len(keys), t.e.opts.MaxTxnOps)
		var ops []clientv3.Op
		for _, k := range keys[:n] {
			ops = append(ops, clientv3.OpGet(k, clientv3.WithKeysOnly()))
		}
		resp, err := t.e.cli.Txn(t.ctx).Then(ops...).Commit()
		if err != nil {
			return "", false
		}
		for i, r := range resp.Responses {
			if !want[keys[i]](modRevision(r)) {
				return keys[i], true
			}
		}
		keys = keys[n:]
	}
	return "", false
}

// wantRevs returns the keys the commit compares, in order, and what each
// one's ModRevision must satisfy.
func (t *tx) wantRevs() ([]string, map[string]func(int64) bool) {
	want := map[string]func(int64) bool{}
	if t.serializable() {
		for k, seen := range t.reads {
			want[k] = func(rev int64) bool { return rev == seen }
		}
	} else {
		for k := range t.writes {
			want[k] = func(rev int64) bool { return rev <= t.snap }
		}
	}
	for k, v := range t.expect {
		want[k] = func(rev int64) bool { return rev == v }
	}
	return sortedKeys(want), want
}
