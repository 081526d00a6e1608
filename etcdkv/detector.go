package etcdkv

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/txkv/txkv/deadlock"
)

// The detector of deadlocks across handles (doc.go, "Deadlocks across
// handles"): every handle campaigns on e/; the leader reads the whole w/
// subspace at one revision every Options.DeadlockInterval, finds the
// cycles with package deadlock's graph, and aborts the youngest member of
// each by putting its abort marker, only if the cycle's edges are still
// as read. One detector for the database, as TiKV's: the waiters need no
// coordination, and the graph is whole in one place.

// maxVictimsPerRound bounds the cycles one round breaks; more wait for the
// next round.
const maxVictimsPerRound = 16

// campaignRetry is the pause after a failed campaign (etcd unreachable).
const campaignRetry = 100 * time.Millisecond

// startDetector starts the handle's campaign, unless detection is off.
func (e *eng) startDetector() {
	if e.opts.DeadlockInterval < 0 {
		return
	}
	e.detWG.Add(1)
	go e.campaignLoop()
}

// stopDetector ends the campaign (resigning if leader) and waits for it.
func (e *eng) stopDetector() {
	e.detCancel()
	e.detWG.Wait()
}

// campaignLoop campaigns under the handle's current session, again under
// the next one when it ends (its lease expired): etcd's election then
// passes to the next candidate, and this handle stands again once a lock
// request started a new session. It never starts one itself: a grant to an
// unreachable cluster would hold Close up (Close cancels the handle's
// context only after revoking the session).
func (e *eng) campaignLoop() {
	defer e.detWG.Done()
	for e.detCtx.Err() == nil {
		sess := e.liveSession()
		if sess == nil || !e.lead(sess) {
			sleepCtx(e.detCtx, campaignRetry)
		}
	}
}

// liveSession returns the handle's session if it is live, else nil.
func (e *eng) liveSession() *concurrency.Session {
	e.smu.Lock()
	defer e.smu.Unlock()
	if e.sess == nil {
		return nil
	}
	select {
	case <-e.sess.Done():
		return nil
	default:
		return e.sess
	}
}

// lead campaigns with sess and, once elected, detects until the handle
// closes or sess ends; false if the campaign failed.
func (e *eng) lead(sess *concurrency.Session) bool {
	ctx, cancel := context.WithCancel(e.detCtx)
	done := make(chan struct{})
	// Cancel first: the goroutine may be waiting for it.
	defer func() { cancel(); <-done }()
	// End the campaign or the leadership with the session.
	go func() {
		defer close(done)
		select {
		case <-sess.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	el := concurrency.NewElection(sess, e.ks.electPrefix())
	if err := el.Campaign(ctx, fmt.Sprintf("%016x", int64(sess.Lease()))); err != nil {
		return ctx.Err() != nil
	}
	e.leading.Store(true)
	defer e.leading.Store(false)
	e.detectLoop(ctx)
	rctx, rcancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer rcancel()
	el.Resign(rctx) // fails if the lease is gone: then so is the key
	return true
}

// detectLoop runs a detection round every DeadlockInterval until ctx ends,
// if an edge changed since the last round (a watch on w/ says so) or the
// last one found a cycle or failed: an idle database costs no reads.
func (e *eng) detectLoop(ctx context.Context) {
	tick := time.NewTicker(e.opts.DeadlockInterval)
	defer tick.Stop()
	var w edgeWatch
	defer w.stop()
	dirty := true
	for {
		if w.ch == nil {
			w.start(ctx, e)
			dirty = true // what changed before the watch started is not in it
		}
		select {
		case <-ctx.Done():
			return
		case wr, ok := <-w.ch:
			dirty = true
			if !ok || wr.Err() != nil {
				w.stop() // broken (no leader, compaction): start again
			}
		case <-tick.C:
			if dirty {
				dirty = e.detectOnce(ctx)
			}
		}
	}
}

// edgeWatch watches the w/ subspace for the leader.
type edgeWatch struct {
	ch     clientv3.WatchChan
	cancel context.CancelFunc
}

func (w *edgeWatch) start(ctx context.Context, e *eng) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	w.ch, w.cancel = e.cli.Watch(wctx, e.ks.waitPrefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly()), cancel
}

func (w *edgeWatch) stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.ch, w.cancel = nil, nil
}

// waitGraph is the w/ subspace read at one revision.
type waitGraph struct {
	g     *deadlock.Graph[struct{}]
	names []string                           // node ID - 1 → the transaction's waitName
	ids   map[string]uint64                  // the reverse
	kvs   map[deadlock.Edge]*mvccpb.KeyValue // an edge (Soft false) → its key
	ages  map[uint64]uint64                  // a waiter's age
}

func (w *waitGraph) id(name string) uint64 {
	if id, ok := w.ids[name]; ok {
		return id
	}
	w.names = append(w.names, name)
	w.ids[name] = uint64(len(w.names))
	return uint64(len(w.names))
}

// readWaits builds the graph of the edges in kvs.
func (e *eng) readWaits(kvs []*mvccpb.KeyValue) *waitGraph {
	w := &waitGraph{g: deadlock.NewGraph[struct{}](), ids: map[string]uint64{},
		kvs: map[deadlock.Edge]*mvccpb.KeyValue{}, ages: map[uint64]uint64{}}
	out := map[uint64][]deadlock.Edge{}
	for _, kv := range kvs {
		waiter, holder, ok := strings.Cut(string(kv.Key[len(e.ks.waitPrefix()):]), "/")
		var v edgeValue
		if !ok || json.Unmarshal(kv.Value, &v) != nil {
			continue
		}
		ed := deadlock.Edge{Waiter: w.id(waiter), Holder: w.id(holder), Soft: v.Soft}
		out[ed.Waiter] = append(out[ed.Waiter], ed)
		w.kvs[deadlock.Edge{Waiter: ed.Waiter, Holder: ed.Holder}] = kv
		w.ages[ed.Waiter] = uint64(v.Age)
	}
	for id, edges := range out {
		w.g.SetWaits(id, struct{}{}, edges)
	}
	return w
}

// detectOnce reads every edge at one revision and breaks the cycles found;
// true if the next round must look again (it found a cycle, or failed).
// A cycle read at revision R existed at R: one range read is one MVCC
// snapshot, and an edge exists only while its waiter waits (doc.go).
func (e *eng) detectOnce(ctx context.Context) (again bool) {
	resp, err := e.cli.Get(ctx, e.ks.waitPrefix(), clientv3.WithPrefix())
	if err != nil {
		return true
	}
	if len(resp.Kvs) < 2 {
		return false // a cycle needs two edges
	}
	w := e.readWaits(resp.Kvs)
	for range maxVictimsPerRound {
		cycle := w.g.FindAnyCycle()
		if cycle == nil {
			return again
		}
		victim := deadlock.ChooseVictimByAge(cycle, deadlock.Youngest, 0,
			func(id uint64) uint64 { return w.ages[id] })
		e.abortVictim(ctx, w, cycle, victim)
		w.g.Remove(victim)
		again = true // until its edges are gone: a failed abort is tried again
	}
	return true
}

// abortVictim puts the victim's abort marker, bound to its lease, with
// the cycle as its value — only if every edge of the cycle is still as
// read (ModRevision), so a cycle that broke meanwhile (a timeout, a
// cancelled context) aborts nobody, and only once.
func (e *eng) abortVictim(ctx context.Context, w *waitGraph, cycle []deadlock.Edge, victim uint64) {
	name := w.names[victim-1]
	o, ok := parseWaitName(name)
	if !ok {
		return
	}
	var cmps []clientv3.Cmp
	var report []markEdge
	for _, ed := range cycle {
		kv := w.kvs[deadlock.Edge{Waiter: ed.Waiter, Holder: ed.Holder}]
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
		var v edgeValue
		json.Unmarshal(kv.Value, &v) // parsed before: cannot fail
		report = append(report, markEdge{W: w.names[ed.Waiter-1], H: w.names[ed.Holder-1], V: v})
	}
	// Report the cycle from the victim's edge, as a local deadlock reads.
	if i := slices.IndexFunc(report, func(m markEdge) bool { return m.W == name }); i > 0 {
		report = append(report[i:], report[:i]...)
	}
	b, _ := json.Marshal(report) // cannot fail: plain fields
	marker := e.ks.abortKey(name)
	cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(marker), "=", 0))
	// A failure (the cycle changed, the victim's lease is gone) leaves it
	// to the next round.
	e.cli.Txn(ctx).If(cmps...).Then(
		clientv3.OpPut(marker, string(b), clientv3.WithLease(clientv3.LeaseID(o.lease)))).Commit()
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
