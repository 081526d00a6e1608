package etcdkv

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
)

// The waiter's side of the detection of deadlocks across handles (doc.go,
// "Deadlocks across handles"): a wait that lasts publishDelay publishes its
// wait-for edges under w/, bound to its session lease, and watches its
// abort marker under a/; the wait's end deletes them in the request that
// ends it (the grant's mark, the withdrawal), so an edge exists in etcd
// exactly while its waiter waits. detector.go reads them.

// publishDelay is how long a wait goes unpublished: most waits end sooner
// (a holder commits), and those cost no request at all — PostgreSQL's
// deadlock_timeout idea. A deadlock is therefore found at the earliest
// this long after it formed.
const publishDelay = 50 * time.Millisecond

// waitName is a transaction's name across handles: its session lease in hex
// and its ID within its handle, as in its lock entries' names (per-handle
// IDs alone collide across handles).
func waitName(o owner) string { return fmt.Sprintf("%016x.%d", uint64(o.lease), o.tx) }

// parseWaitName reads waitName back; ok is false for a malformed name.
func parseWaitName(s string) (o owner, ok bool) {
	l, t, found := strings.Cut(s, ".")
	lease, err1 := strconv.ParseUint(l, 16, 64)
	tx, err2 := strconv.ParseUint(t, 10, 64)
	if !found || err1 != nil || err2 != nil {
		return owner{}, false
	}
	return owner{lease: int64(lease), tx: tx}, true
}

// edgeValue is what an edge w/<waiter>/<holder> carries: what a deadlock
// report needs, and the waiter's age for the choice of the victim.
type edgeValue struct {
	Age   int64  `json:"age"`           // the waiter's first attempt's start, Unix ns: the largest is the youngest
	Key   string `json:"key"`           // the target's start, hex
	End   string `json:"end,omitempty"` // a range's end, hex
	Range bool   `json:"range,omitempty"`
	Open  bool   `json:"open,omitempty"` // a range without an end
	Mode  string `json:"mode"`           // what the waiter asks for: s or x
	HMode string `json:"hmode"`          // what the holder holds (or is queued for)
	Soft  bool   `json:"soft,omitempty"` // the holder is queued ahead, not holding
	Up    bool   `json:"up,omitempty"`   // the waiter asks for an upgrade
	Label string `json:"label,omitempty"`
}

// markEdge is an edge of the cycle an abort marker reports.
type markEdge struct {
	W string    `json:"w"`
	H string    `json:"h"`
	V edgeValue `json:"v"`
}

func modeOf(s string) lockmgr.Mode {
	if s == "s" {
		return lockmgr.Shared
	}
	return lockmgr.Exclusive
}

// waitPub is a published wait: the edges in w/ and the watch of the abort
// marker. It belongs to the transaction's goroutine.
type waitPub struct {
	name    string
	holders []string // the holders published, sorted
	rev     int64    // the revision of the first publication
	abort   clientv3.WatchChan
	cancel  context.CancelFunc // ends the watch
}

// edges returns the edges of req's wait behind bl, one per transaction in
// the way, sorted by holder: every one, not only other handles'; a cycle
// may pass through this handle's transactions and others' in turn.
func (t *tx) edges(req *entry, bl []entry) (holders []string, vals []edgeValue) {
	byHolder := map[string]edgeValue{}
	for i := range bl {
		b := &bl[i]
		h := waitName(b.own)
		if old, ok := byHolder[h]; ok && !old.Soft {
			continue // a hard edge wins
		}
		v := edgeValue{Age: t.born.UnixNano(), Key: hex.EncodeToString(req.start), Range: req.isRange,
			Mode: modeChar(req.mode), HMode: modeChar(b.mode), Soft: !b.granted, Up: req.base > 0, Label: t.opts.Label}
		if req.isRange {
			v.End, v.Open = hex.EncodeToString(req.end), req.end == nil
		}
		byHolder[h] = v
	}
	for h := range byHolder {
		holders = append(holders, h)
	}
	slices.Sort(holders)
	for _, h := range holders {
		vals = append(vals, byHolder[h])
	}
	return holders, vals
}

// publish puts req's edges (in one Txn: the new ones, and the deletion of
// those no longer in the way) and, the first time, starts watching the
// abort marker. Unchanged holders cost nothing.
func (t *tx) publish(req *entry, bl []entry, sess *concurrency.Session) error {
	name := waitName(req.own)
	holders, vals := t.edges(req, bl)
	if t.pub != nil && slices.Equal(t.pub.holders, holders) {
		return nil
	}
	var ops []clientv3.Op
	if t.pub != nil {
		for _, h := range t.pub.holders {
			if !slices.Contains(holders, h) {
				ops = append(ops, clientv3.OpDelete(t.e.ks.edgeKey(name, h)))
			}
		}
	}
	for i, h := range holders {
		b, _ := json.Marshal(vals[i]) // cannot fail: plain fields
		ops = append(ops, clientv3.OpPut(t.e.ks.edgeKey(name, h), string(b), clientv3.WithLease(sess.Lease())))
	}
	resp, err := t.e.cli.Txn(t.ctx).Then(ops...).Commit()
	if err != nil {
		return t.mapErr(err)
	}
	if t.pub == nil {
		t.pub = &waitPub{name: name, rev: resp.Header.Revision}
	}
	t.pub.holders = holders
	if t.pub.abort == nil {
		t.watchAbort()
	}
	return nil
}

// watchAbort watches the abort marker. No marker can predate the first
// publication (the detector puts one only while the edges exist), so one
// put after pub.rev is what counts. The watch starts at the current
// revision, not at pub.rev+1, for the reason awaitDelete gives (a watch
// from the past waits for etcd's 100 ms resync); a marker put between
// pub.rev and the watch's start is found by one Get when the watch reports
// it was created (abortEvent).
func (t *tx) watchAbort() {
	ctx, cancel := context.WithCancel(clientv3.WithRequireLeader(t.ctx))
	t.pub.cancel = cancel
	t.pub.abort = t.e.cli.Watch(ctx, t.e.ks.abortKey(t.pub.name), clientv3.WithFilterDelete(),
		clientv3.WithCreatedNotify())
}

// unpublishOps delete the published edges and the abort marker: they join
// the request that ends the wait, so no edge outlives its wait.
func (t *tx) unpublishOps() []clientv3.Op {
	if t.pub == nil {
		return nil
	}
	ops := []clientv3.Op{clientv3.OpDelete(t.e.ks.abortKey(t.pub.name))}
	for _, h := range t.pub.holders {
		ops = append(ops, clientv3.OpDelete(t.e.ks.edgeKey(t.pub.name, h)))
	}
	return ops
}

// endPub forgets the publication once its keys are deleted.
func (t *tx) endPub() {
	if t.pub != nil {
		t.pub.cancel()
		t.pub = nil
	}
}

// unpublish deletes a publication still standing when a wait ends by a
// path that did not (best effort: the lease removes it otherwise).
func (t *tx) unpublish() {
	if t.pub == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	t.e.cli.Txn(ctx).Then(t.unpublishOps()...).Commit()
	t.endPub()
}

// abortEvent reads the abort watch's response: the *DeadlockError if the
// marker was put; nil if the watch broke (it is started again at the next
// publication) or no marker is there yet. When the watch reports it was
// created at a revision past the first publication, the marker is read
// once: it may have been put in between.
func (t *tx) abortEvent(wr clientv3.WatchResponse, ok bool) error {
	if !ok || wr.Err() != nil {
		t.watchBroke()
		return nil
	}
	kvs := make([]*mvccpb.KeyValue, 0, len(wr.Events))
	for _, ev := range wr.Events {
		kvs = append(kvs, ev.Kv)
	}
	if wr.Created && wr.Header.GetRevision() > t.pub.rev {
		kv, err := t.markerSince(t.pub.rev)
		if err != nil {
			t.watchBroke()
			return nil
		}
		if kv != nil {
			kvs = append(kvs, kv)
		}
	}
	for _, kv := range kvs {
		var cycle []markEdge
		if json.Unmarshal(kv.Value, &cycle) == nil && len(cycle) > 0 {
			return t.crossDeadlock(cycle)
		}
	}
	return nil
}

// watchBroke ends the abort watch; the next publication starts it again.
func (t *tx) watchBroke() {
	t.pub.cancel()
	t.pub.abort = nil
	t.pub.holders = nil // republish, which restarts the watch
}

// markerSince returns the abort marker if it was put after rev, else nil.
func (t *tx) markerSince(rev int64) (*mvccpb.KeyValue, error) {
	resp, err := t.e.cli.Get(t.ctx, t.e.ks.abortKey(t.pub.name))
	if err != nil || len(resp.Kvs) == 0 || resp.Kvs[0].ModRevision <= rev {
		return nil, err
	}
	return resp.Kvs[0], nil
}

// crossDeadlock is the *DeadlockError of a victim chosen by the detector.
// Its IDs are per handle, as everywhere in etcdkv (the victim's is its
// own); as IDs of different handles may be equal, a transaction whose ID
// another member of the report has already is given an unused one, and
// the Labels name the handle (session lease) of every transaction of
// another handle, with its own ID when it was renumbered.
func (t *tx) crossDeadlock(cycle []markEdge) *txkv.DeadlockError {
	de := &txkv.DeadlockError{Victim: t.id}
	r := reportIDs{byName: map[string]uint64{t.pub.name: t.id}, used: map[uint64]bool{t.id: true}, next: t.id}
	labels := map[string]string{}
	for _, m := range cycle {
		labels[m.W] = m.V.Label
	}
	for _, m := range cycle {
		v := m.V
		ed := lockmgr.WaitEdge{Waiter: r.id(m.W), Holder: r.id(m.H), Range: v.Range, Mode: modeOf(v.Mode),
			HolderMode: modeOf(v.HMode), Soft: v.Soft, Upgrade: v.Up}
		ed.Key, _ = hex.DecodeString(v.Key)
		if v.Range && !v.Open {
			ed.End, _ = hex.DecodeString(v.End)
		}
		de.Cycle = append(de.Cycle, ed)
	}
	mine, _ := parseWaitName(t.pub.name)
	for name, id := range r.byName {
		o, _ := parseWaitName(name)
		l := labels[name]
		if o.lease != mine.lease {
			where := fmt.Sprintf("handle %x", uint64(o.lease))
			if id != o.tx {
				where = fmt.Sprintf("txn %d of %s", o.tx, where)
			}
			l = strings.TrimPrefix(l+", "+where, ", ")
		}
		if l != "" {
			if de.Labels == nil {
				de.Labels = map[uint64]string{}
			}
			de.Labels[id] = l
		}
	}
	return de
}

// reportIDs numbers the transactions of a deadlock report.
type reportIDs struct {
	byName map[string]uint64
	used   map[uint64]bool
	next   uint64 // the largest ID given
}

// id is name's ID in the report: its own within its handle, unless another
// member has that one already.
func (r *reportIDs) id(name string) uint64 {
	if id, ok := r.byName[name]; ok {
		return id
	}
	o, _ := parseWaitName(name)
	id := o.tx
	for r.used[id] {
		r.next++
		id = r.next
	}
	r.next = max(r.next, id)
	r.byName[name], r.used[id] = id, true
	return id
}
