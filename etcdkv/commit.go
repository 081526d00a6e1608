package etcdkv

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/txn"
)

// commit ends the transaction. A read-only one read one revision and needs
// no validation. Otherwise one etcd Txn carries:
//
//	If   ModRevision(k) == seen        for every key read (Serializable)
//	     ModRevision([from,to)) < S+1  for every scanned range: no key in it
//	                                   created or changed after S
//	                                   (a deleted key is caught by the
//	                                   per-key compare: a range compare
//	                                   cannot see what is gone)
//	     ModRevision(k) < S+1          for every written key (Snapshot:
//	                                   first committer wins)
//	     ModRevision(k) == v           for every PutIfVersion
//	     CreateRevision(record) == 0   the transaction record (record.go)
//	Then the writes, and the record
//
// Under Serializable blind writes are not compared: the transaction
// serializes at its commit revision, where every read is still current.
func (t *tx) commit() error {
	if err := t.usable(); err != nil {
		return err
	}
	t.done = true
	if len(t.writes) == 0 {
		t.e.stats.commits.Add(1)
		return nil
	}
	rec, err := t.e.newRecord(t.ctx)
	if err != nil {
		t.e.stats.aborts.Add(1)
		return t.mapErr(err)
	}
	// The record's compare and write come last (send relies on it).
	cmps := append(t.compares(), rec.cmp())
	ops := append(t.ops(), rec.put(recordCommitted))
	if err := checkTxnSize(len(cmps), len(ops), t.e.opts); err != nil {
		t.e.stats.aborts.Add(1)
		return err
	}
	applied, err := t.send(rec, cmps, ops)
	if err != nil {
		t.e.stats.aborts.Add(1)
		return t.commitErr(err)
	}
	if !applied {
		t.e.stats.aborts.Add(1)
		t.e.stats.conflicts.Add(1)
		return t.conflict()
	}
	t.e.stats.commits.Add(1)
	t.e.stats.writes.Add(int64(len(ops) - 1))
	return nil
}

func (t *tx) compares() []clientv3.Cmp {
	var cmps []clientv3.Cmp
	if t.serializable() {
		for _, k := range sortedKeys(t.reads) {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", t.reads[k]))
		}
		for _, r := range t.ranges {
			cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r.from), "<", t.snap+1).WithRange(r.to))
		}
	} else {
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

// conflict finds which compare failed, reading the keys and ranges again,
// and names it in a *txkv.ConflictError (the first found, in the order the
// compares were made). If nothing differs any more (the conflicting write
// was undone meanwhile), the error names no key.
func (t *tx) conflict() error {
	ce := &txkv.ConflictError{TxID: t.id}
	if key, ok := t.changedKey(); ok {
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
	keys := sortedKeys(want)
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
			var rev int64
			if kvs := r.GetResponseRange().GetKvs(); len(kvs) > 0 {
				rev = kvs[0].ModRevision
			}
			if !want[keys[i]](rev) {
				return keys[i], true
			}
		}
		keys = keys[n:]
	}
	return "", false
}
