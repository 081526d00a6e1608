package etcdkv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/lockmgr"
)

// The lock requests of a transaction over etcd: put an entry, read what is
// ahead of it at the same revision, and if something incompatible is, wait
// for its deletion and read again. See doc.go, "Locks".

// ReasonLockLost is the Reason of the *txkv.ConflictError of a transaction
// whose lock entry vanished before it committed: its session lease expired
// (the process stalled or lost etcd for longer than Options.SessionTTL) or
// was revoked. Nothing of the transaction was written; like every
// conflict it is retryable, and Update retries it.
const ReasonLockLost = "lock-lost"

// ReasonWriteLocked is the Reason of the *txkv.ConflictError of an
// optimistic commit that would write a key another transaction holds a
// lock on (or has queued for): it would break that transaction's two-phase
// locking. Retryable.
const ReasonWriteLocked = "write-locked"

// withdrawTimeout bounds the request that deletes an entry after its wait
// ended without the lock (its ctx may be done already): past it, the lease
// removes the entry.
const withdrawTimeout = 5 * time.Second

// maxTryRounds bounds how often a non-waiting request re-reads a queue
// that keeps changing under it before it reports the lock unavailable.
const maxTryRounds = 8

var (
	errWaitTimedOut = errors.New("txkv: etcdkv: lock wait timed out")
	errSessionEnded = errors.New("txkv: etcdkv: the session's lease ended")
)

// lockState is what a transaction holds.
type lockState struct {
	held []entry // granted entries, in grant order
	seq  uint64  // numbers the transaction's entries
}

// newRequest is the entry of a request for target in mode.
func newRequest(start, end []byte, isRange bool, mode lockmgr.Mode) *entry {
	e := &entry{start: bytes.Clone(start), isRange: isRange, mode: mode}
	if isRange {
		e.end = bytes.Clone(end)
	}
	return e
}

// covered reports whether a lock the transaction holds makes req redundant
// (re-entrant requests return at once, as locally).
func (t *tx) covered(req *entry) bool {
	for i := range t.locks.held {
		if covers(&t.locks.held[i], req) {
			return true
		}
	}
	return false
}

// baseFor returns the CreateRevision of the earliest lock the transaction
// holds overlapping req (0: none): req is then an upgrade.
func (t *tx) baseFor(req *entry) int64 {
	var base int64
	for i := range t.locks.held {
		h := &t.locks.held[i]
		if overlaps(h, req) && (base == 0 || h.rev < base) {
			base = h.rev
		}
	}
	return base
}

// lock acquires req under policy, waiting at most timeout (the one
// convention: > 0, 0 do not wait, Forever).
func (t *tx) lock(req *entry, policy lockmgr.WaitPolicy, timeout time.Duration) error {
	if t.covered(req) {
		return nil
	}
	for retried := false; ; retried = true {
		sess, err := t.prepare(req)
		if err != nil {
			return err
		}
		if policy != lockmgr.Block || timeout == 0 {
			err = t.tryLock(req, policy, sess)
		} else {
			err = t.waitLock(req, timeout, sess)
		}
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return err
		}
		// The session's lease is gone and the session has not noticed yet
		// (its keep-alive would, within a third of the TTL).
		t.e.dropSession(sess)
		if retried || len(t.locks.held) > 0 {
			return t.lost(req)
		}
		*req = entry{start: req.start, end: req.end, isRange: req.isRange, mode: req.mode}
	}
}

// prepare completes a request: its owner (the current session and this
// transaction), its base and its key. Locks held under an earlier session
// were lost when its lease expired: the transaction fails.
func (t *tx) prepare(req *entry) (*concurrency.Session, error) {
	if req.mode != lockmgr.Shared && req.mode != lockmgr.Exclusive {
		return nil, fmt.Errorf("%w: lock mode %d", txkv.ErrInvalidOption, req.mode)
	}
	sess, err := t.e.session()
	if err != nil {
		return nil, err
	}
	req.own = owner{lease: int64(sess.Lease()), tx: t.id}
	for i := range t.locks.held {
		if h := &t.locks.held[i]; h.own.lease != req.own.lease {
			return nil, t.lost(h)
		}
	}
	req.base = t.baseFor(req)
	t.locks.seq++
	req.key = t.e.ks.entryKey(req, t.locks.seq)
	return sess, nil
}

// lost fails the transaction because entry e is gone: ErrClosed if the DB
// was closed (Close revokes the lease), else a lost lock.
func (t *tx) lost(e *entry) error {
	if t.e.closed.Load() {
		return t.fail(txkv.ErrClosed)
	}
	return t.fail(lockLost(t.id, e))
}

func lockLost(id uint64, e *entry) error {
	ce := &txkv.ConflictError{TxID: id, Key: bytes.Clone(e.start), Reason: ReasonLockLost}
	if e.isRange {
		ce.Range, ce.End = true, bytes.Clone(e.end)
	}
	return ce
}

// snapRanges are the etcd ranges holding every entry that can overlap req:
// the point queues of its target and the range entries starting before its
// end.
func (t *tx) snapRanges(req *entry) [][2]string {
	ks := t.e.ks
	if req.isRange {
		qf, qt := ks.queues(req.start, req.end)
		rf, rt := ks.rangesBelow(req.end, false)
		return [][2]string{{qf, qt}, {rf, rt}}
	}
	qf, qt := ks.queue(req.start)
	rf, rt := ks.rangesBelow(req.start, true)
	return [][2]string{{qf, qt}, {rf, rt}}
}

func getOps(ranges [][2]string) []clientv3.Op {
	ops := make([]clientv3.Op, len(ranges))
	for i, r := range ranges {
		ops[i] = clientv3.OpGet(r[0], clientv3.WithRange(r[1]))
	}
	return ops
}

// fastCompares, when they hold, grant req at once with no read: no range
// entry exists and the key's queue holds nothing req conflicts with. Only
// a first point request of its transaction on the key qualifies (an
// upgrade or a range needs the full rule); nil otherwise.
func (t *tx) fastCompares(req *entry) []clientv3.Cmp {
	if req.isRange || req.base > 0 {
		return nil
	}
	qf, qt := t.e.ks.queue(req.start)
	if req.mode == lockmgr.Shared {
		qf, qt = t.e.ks.xqueue(req.start)
	}
	rf, rt := t.e.ks.allRanges()
	return []clientv3.Cmp{
		clientv3.Compare(clientv3.CreateRevision(qf).WithRange(qt), "=", 0),
		clientv3.Compare(clientv3.CreateRevision(rf).WithRange(rt), "=", 0),
	}
}

// parseSnap reads the entries of the snapshot ranges' responses that
// overlap req.
func (t *tx) parseSnap(req *entry, resps []*pb.ResponseOp) []entry {
	var out []entry
	for _, r := range resps {
		for _, kv := range r.GetResponseRange().GetKvs() {
			if e, ok := t.e.ks.parseEntry(kv); ok && overlaps(&e, req) {
				out = append(out, e)
			}
		}
	}
	return out
}

// tryLock is a request that does not wait (NoWait, SkipLocked, a timeout
// of 0): one Txn puts the entry if the fast compares hold, else reads the
// queue; if the full rule then grants it, a second Txn puts it provided
// nothing was queued meanwhile. Otherwise it returns a *LockError at once,
// without having queued.
func (t *tx) tryLock(req *entry, policy lockmgr.WaitPolicy, sess *concurrency.Session) error {
	req.granted = true // put only when granted
	put := clientv3.OpPut(req.key, req.value(), clientv3.WithLease(sess.Lease()))
	ranges := t.snapRanges(req)
	fast := t.fastCompares(req)
	var bl []entry
	for range maxTryRounds {
		txn := t.e.cli.Txn(t.ctx)
		if fast != nil {
			txn = txn.If(fast...).Then(put).Else(getOps(ranges)...)
		} else {
			txn = txn.Then(getOps(ranges)...)
		}
		resp, err := txn.Commit()
		if err != nil {
			return t.mapErr(err)
		}
		if fast != nil && resp.Succeeded {
			return t.granted(req, resp.Header.Revision)
		}
		snap := t.parseSnap(req, resp.Responses)
		if bl = blockers(req, snap); len(bl) > 0 {
			break
		}
		ok, rev, err := t.putIfUnchanged(put, ranges, nil, resp.Header.Revision)
		if err != nil || ok {
			if err != nil {
				return err
			}
			return t.granted(req, rev)
		}
		fast = nil
	}
	return t.refusal(req, bl, policy, 0)
}

// putIfUnchanged puts a granted entry if no entry was created or changed
// in the snapshot ranges since rev, so the rule's answer at rev still
// holds (the put of a new entry, or the mark of a waiter, which must still
// exist: mine is its key and CreateRevision).
func (t *tx) putIfUnchanged(put clientv3.Op, ranges [][2]string, mine *entry, rev int64, also ...clientv3.Op) (bool, int64, error) {
	var cmps []clientv3.Cmp
	for _, r := range ranges {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(r[0]).WithRange(r[1]), "<", rev+1))
	}
	if mine != nil {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(mine.key), "=", mine.rev))
	}
	resp, err := t.e.cli.Txn(t.ctx).If(cmps...).Then(append([]clientv3.Op{put}, also...)...).Commit()
	if err != nil {
		return false, 0, t.mapErr(err)
	}
	return resp.Succeeded, resp.Header.Revision, nil
}

// refusal is the *LockError of a request not granted without waiting, or
// whose wait of timeout ran out.
func (t *tx) refusal(req *entry, bl []entry, policy lockmgr.WaitPolicy, waited time.Duration) error {
	le := &txkv.LockError{Err: txkv.ErrLockNotAvailable, Txn: t.id, Mode: req.mode, Timeout: waited,
		Target: lockmgr.Point(bytes.Clone(req.start))}
	if policy == lockmgr.Block {
		le.Err = txkv.ErrLockTimeout
		t.e.stats.lockTimeouts.Add(1)
	} else {
		t.e.stats.notAvailable.Add(1)
	}
	if req.isRange {
		le.Target = lockmgr.Span(bytes.Clone(req.start), bytes.Clone(req.end))
	}
	seen := map[owner]bool{}
	for i := range bl {
		b := &bl[i]
		if seen[b.own] {
			continue // one transaction, several entries in the way
		}
		seen[b.own] = true
		if b.granted {
			le.Holders = append(le.Holders, b.own.tx)
		} else {
			le.Queued = append(le.Queued, b.own.tx)
		}
	}
	slices.Sort(le.Holders)
	slices.Sort(le.Queued)
	return le
}

// waitLock is a blocking request: one Txn puts the entry (and, unless the
// fast compares held, reads what is ahead of it at that revision); then it
// waits for what the rule says is in its way.
func (t *tx) waitLock(req *entry, timeout time.Duration, sess *concurrency.Session) error {
	queued := clientv3.OpPut(req.key, req.value(), clientv3.WithLease(sess.Lease()))
	ranges := t.snapRanges(req)
	ops := append(getOps(ranges), queued)
	txn := t.e.cli.Txn(t.ctx)
	fast := t.fastCompares(req)
	if fast != nil {
		req.granted = true
		put := clientv3.OpPut(req.key, req.value(), clientv3.WithLease(sess.Lease()))
		req.granted = false
		txn = txn.If(fast...).Then(put).Else(ops...)
	} else {
		txn = txn.Then(ops...)
	}
	resp, err := txn.Commit()
	if err != nil {
		t.withdraw(req) // the put may have been applied
		return t.mapErr(err)
	}
	if fast != nil && resp.Succeeded {
		req.granted = true
		return t.granted(req, resp.Header.Revision)
	}
	req.rev = resp.Header.Revision
	snap := t.parseSnap(req, resp.Responses[:len(ranges)])
	return t.wait(req, snap, resp.Header.Revision, timeout, sess)
}

// wait is the loop of a queued request: while the rule finds entries in
// its way, record the wait (finding deadlocks among this handle's
// transactions), wait for the deletion of the latest of them, and read the
// queue again. A wait that lasts publishDelay publishes its edges for the
// detector of deadlocks across handles (waitfor.go). A request that does
// not get the lock withdraws its entry.
func (t *tx) wait(req *entry, snap []entry, rev int64, timeout time.Duration, sess *concurrency.Session) error {
	w := t.newWaiter(timeout)
	defer w.stop()
	for {
		bl := blockers(req, snap)
		if len(bl) == 0 {
			ok, err := t.mark(req, rev, sess)
			if ok || err != nil {
				return err
			}
			if err := w.expired(req); err != nil { // the queue keeps changing: do not outlive the timer or ctx
				return err
			}
			if snap, rev, err = t.reread(req); err != nil { // something changed: ask again
				return err
			}
			continue
		}
		if err := t.e.reg.waiting(t.id, t.opts.Label, req, bl); err != nil {
			return t.deadlocked(req, err)
		}
		w.waited = true
		if err := w.republish(req, bl, sess); err != nil {
			t.withdraw(req)
			return err
		}
		err := t.awaitDelete(latest(bl), rev, w, sess)
		switch {
		case errors.Is(err, errPublish):
			if err := t.publish(req, bl, sess); err != nil {
				t.withdraw(req)
				return err
			}
			continue // the same snapshot: the watch starts again from rev
		case errors.Is(err, errWaitTimedOut):
			t.withdraw(req)
			return t.refusal(req, bl, lockmgr.Block, timeout)
		case errors.Is(err, errSessionEnded):
			return t.lost(req)
		case errors.Is(err, txkv.ErrDeadlock):
			return t.deadlocked(req, err)
		case err != nil:
			t.withdraw(req)
			return err
		}
		if snap, rev, err = t.reread(req); err != nil {
			return err
		}
	}
}

// errPublish tells wait that its wait lasted publishDelay.
var errPublish = errors.New("txkv: etcdkv: publish the wait")

// waiter is the state of one wait: its timers and whether it waited.
type waiter struct {
	t       *tx
	start   time.Time
	timeout time.Duration
	timer   <-chan time.Time // the lock timeout (nil: Forever)
	pub     <-chan time.Time // publishDelay (nil: fired, or detection off)
	stops   []func() bool
	waited  bool
}

func (t *tx) newWaiter(timeout time.Duration) *waiter {
	w := &waiter{t: t, start: time.Now(), timeout: timeout}
	if timeout > 0 {
		tm := time.NewTimer(timeout)
		w.timer, w.stops = tm.C, append(w.stops, tm.Stop)
	}
	if t.e.opts.DeadlockInterval > 0 {
		pt := time.NewTimer(publishDelay)
		w.pub, w.stops = pt.C, append(w.stops, pt.Stop)
	}
	return w
}

// stop ends the wait: timers, the registry's record, a publication still
// standing, the statistics.
func (w *waiter) stop() {
	for _, s := range w.stops {
		s()
	}
	w.t.e.reg.stopWaiting(w.t.id)
	w.t.unpublish()
	if w.waited {
		w.t.e.stats.lockWaits.Add(1)
		w.t.e.stats.lockWaitNanos.Add(int64(time.Since(w.start)))
	}
}

// expired returns the error of a wait whose timer or ctx ended, withdrawn.
func (w *waiter) expired(req *entry) error {
	select {
	case <-w.timer:
		w.t.withdraw(req)
		return w.t.refusal(req, nil, lockmgr.Block, w.timeout)
	case <-w.t.ctx.Done():
		w.t.withdraw(req)
		return w.t.ctx.Err()
	default:
		return nil
	}
}

// republish updates a standing publication to the blockers read last.
func (w *waiter) republish(req *entry, bl []entry, sess *concurrency.Session) error {
	if w.t.pub == nil {
		return nil
	}
	return w.t.publish(req, bl, sess)
}

// deadlocked ends the wait of a deadlock victim (found here or by the
// detector): its entry is withdrawn and the transaction fails.
func (t *tx) deadlocked(req *entry, err error) error {
	t.withdraw(req)
	t.e.stats.deadlocks.Add(1)
	var de *txkv.DeadlockError
	if errors.As(err, &de) {
		t.e.reg.setLast(de)
	}
	return t.fail(err)
}

// reread reads the snapshot of a queued request again; a request whose
// entry is gone (its lease expired while it waited) fails the transaction.
func (t *tx) reread(req *entry) ([]entry, int64, error) {
	snap, rev, err := t.readSnap(req)
	if err != nil {
		t.withdraw(req)
		return nil, 0, err
	}
	if !slices.ContainsFunc(snap, func(e entry) bool { return e.key == req.key }) {
		return nil, 0, t.lost(req)
	}
	return snap, rev, nil
}

// lockBatch acquires reqs (sorted, Block, waiting at most timeout each):
// one Txn reads what is ahead of every one of them and puts them all, so
// they share one queue position, then it waits for each in turn. A
// transaction that holds no lock before queues for its whole set at once:
// two such sets cannot deadlock (one is wholly ahead of the other), nor
// can a range lock queue between two of its keys — the deadlock an
// optimistic commit locking its writes one by one met against a scan's
// range lock. Past what one Txn may hold, it goes in chunks.
func (t *tx) lockBatch(reqs []*entry, timeout time.Duration) error {
	var todo []*entry
	for _, r := range reqs {
		if !t.covered(r) {
			todo = append(todo, r)
		}
	}
	per := max(1, t.e.opts.MaxTxnOps/3) // two reads and a put each
	for len(todo) > 0 {
		n := min(len(todo), per)
		if err := t.lockChunk(todo[:n], timeout); err != nil {
			return err
		}
		todo = todo[n:]
	}
	return nil
}

func (t *tx) lockChunk(reqs []*entry, timeout time.Duration) error {
	sess, err := t.e.session()
	if err != nil {
		return err
	}
	var gets, queued, granted []clientv3.Op
	var fast []clientv3.Cmp
	ranges := make([][][2]string, len(reqs))
	for i, req := range reqs {
		if _, err := t.prepare(req); err != nil {
			return err
		}
		ranges[i] = t.snapRanges(req)
		gets = append(gets, getOps(ranges[i])...)
		queued = append(queued, clientv3.OpPut(req.key, req.value(), clientv3.WithLease(sess.Lease())))
		g := *req
		g.granted = true
		granted = append(granted, clientv3.OpPut(g.key, g.value(), clientv3.WithLease(sess.Lease())))
		fast = addFast(fast, t.fastCompares(req))
	}
	if len(fast) < len(reqs)+1 {
		fast = nil // a request of the set has no fast compares
	}
	txn := t.e.cli.Txn(t.ctx)
	if fast != nil {
		txn = txn.If(fast...).Then(granted...).Else(append(gets, queued...)...)
	} else {
		txn = txn.Then(append(gets, queued...)...)
	}
	resp, err := txn.Commit()
	if err != nil {
		t.withdrawAll(reqs)
		return t.leaseLost(err, sess, reqs[0])
	}
	if fast != nil && resp.Succeeded {
		for _, req := range reqs {
			req.granted = true
			t.granted(req, resp.Header.Revision)
		}
		return nil
	}
	at := 0
	for i, req := range reqs {
		req.rev = resp.Header.Revision
		snap := t.parseSnap(req, resp.Responses[at:at+len(ranges[i])])
		at += len(ranges[i])
		if err := t.wait(req, snap, resp.Header.Revision, timeout, sess); err != nil {
			t.withdrawAll(reqs[i+1:])
			return err
		}
	}
	return nil
}

// addFast adds a request's fast compares (its queue's, then "no range
// entry") to a set's, the range compare once: a set of n requests that all
// have them has n+1.
func addFast(set, f []clientv3.Cmp) []clientv3.Cmp {
	switch {
	case f == nil:
		return set
	case len(set) == 0:
		return f
	}
	return append(set, f[0])
}

// leaseLost maps the error of a request that put entries: if the session's
// lease is gone, the session is dropped and the transaction fails with a
// lost lock (retryable).
func (t *tx) leaseLost(err error, sess *concurrency.Session, req *entry) error {
	if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return t.mapErr(err)
	}
	t.e.dropSession(sess)
	return t.lost(req)
}

// withdrawAll withdraws queued requests that will not be waited for.
func (t *tx) withdrawAll(reqs []*entry) {
	if len(reqs) == 0 {
		return
	}
	ops := make([]clientv3.Op, len(reqs))
	for i, r := range reqs {
		ops[i] = clientv3.OpDelete(r.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	t.e.cli.Txn(ctx).Then(ops...).Commit() // on failure the lease removes them within the TTL
}

// mark marks a waiting entry granted if nothing overlapping it changed
// since rev (putIfUnchanged): false if something did.
func (t *tx) mark(req *entry, rev int64, sess *concurrency.Session) (bool, error) {
	req.granted = true
	put := clientv3.OpPut(req.key, req.value(), clientv3.WithLease(sess.Lease()))
	// The grant deletes the wait's edges: none outlives its wait.
	ok, _, err := t.putIfUnchanged(put, t.snapRanges(req), req, rev, t.unpublishOps()...)
	if err != nil || !ok {
		req.granted = false
		if err != nil {
			t.withdraw(req)
		}
		return false, err
	}
	t.endPub()
	return true, t.granted(req, req.rev)
}

// latest returns the blocker that queued last: it is usually the last to go.
func latest(bl []entry) *entry {
	last := &bl[0]
	for i := range bl {
		if bl[i].rev > last.rev {
			last = &bl[i]
		}
	}
	return last
}

// awaitDelete waits, in one select, for b's deletion after rev, the
// timer, the transaction's ctx, the DB's Close, the session's end, the
// publication delay and the detector's abort marker.
//
// The watch starts at the current revision, not at rev+1: etcd serves a
// watch that starts in the past from its "unsynced" group, which it
// catches up only every 100 ms (watchResyncPeriod in its mvcc package) —
// measured here, that made every contended lock hand-off wait tens of
// milliseconds (46 transfers/s on 10 accounts with 4 workers). So once the
// watch is created, at revision W, a deletion at or before W is looked for
// by one Get; one after W the watch reports. Entry keys are never reused,
// so "absent" means deleted.
func (t *tx) awaitDelete(b *entry, rev int64, w *waiter, sess *concurrency.Session) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(t.ctx))
	defer cancel()
	wch := t.e.cli.Watch(wctx, b.key, clientv3.WithFilterPut(), clientv3.WithCreatedNotify())
	var abort clientv3.WatchChan
	if t.pub != nil {
		abort = t.pub.abort
	}
	for {
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil || len(wr.Events) > 0 {
				return t.ctx.Err() // deleted, or the watch broke: read again (unless ctx ended it)
			}
			if wr.Created && wr.Header.Revision > rev && t.gone(b.key) {
				return t.ctx.Err() // deleted before the watch began: read again
			}
		case <-w.timer:
			return errWaitTimedOut
		case <-t.ctx.Done():
			return t.ctx.Err()
		case <-t.e.ctx.Done():
			return txkv.ErrClosed
		case <-sess.Done():
			return errSessionEnded
		case <-w.pub:
			w.pub = nil
			return errPublish
		case wr, ok := <-abort:
			if err := t.abortEvent(wr, ok); err != nil || t.pub.abort == nil {
				return err // the victim; or the watch broke: read again, publish again
			}
		}
	}
}

// gone reports whether key no longer exists (or could not be read: the
// caller reads the queue again either way).
func (t *tx) gone(key string) bool {
	resp, err := t.e.cli.Get(t.ctx, key, clientv3.WithCountOnly())
	return err != nil || resp.Count == 0
}

// readSnap reads the entries that can overlap req, at one revision.
func (t *tx) readSnap(req *entry) ([]entry, int64, error) {
	resp, err := t.e.cli.Txn(t.ctx).Then(getOps(t.snapRanges(req))...).Commit()
	if err != nil {
		return nil, 0, t.mapErr(err)
	}
	return t.parseSnap(req, resp.Responses), resp.Header.Revision, nil
}

// withdraw deletes the entry of a request that did not get the lock, with
// its own deadline: the transaction's ctx may be what ended the wait.
// The wait's edges go in the same request.
func (t *tx) withdraw(req *entry) {
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	ops := append([]clientv3.Op{clientv3.OpDelete(req.key)}, t.unpublishOps()...)
	t.e.cli.Txn(ctx).Then(ops...).Commit() // on failure the lease removes them within the TTL
	t.endPub()
}

// granted records req, put at rev, as held.
func (t *tx) granted(req *entry, rev int64) error {
	req.rev = rev
	t.locks.held = append(t.locks.held, *req)
	t.e.reg.granted(t.id, t.opts.Label, req)
	return nil
}

// releaseOps deletes every entry the transaction holds.
func (t *tx) releaseOps() []clientv3.Op {
	ops := make([]clientv3.Op, len(t.locks.held))
	for i := range t.locks.held {
		ops[i] = clientv3.OpDelete(t.locks.held[i].key)
	}
	return ops
}

// release deletes the transaction's entries, in one request unless they
// are more than a Txn may hold. It has its own deadline: a transaction
// ended by its ctx still releases.
func (t *tx) release() {
	defer t.e.reg.released(t.id)
	ops := t.releaseOps()
	t.locks.held = nil
	if len(ops) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	for len(ops) > 0 {
		n := min(len(ops), t.e.opts.MaxTxnOps)
		t.e.cli.Txn(ctx).Then(ops[:n]...).Commit() // on failure the lease removes them within the TTL
		ops = ops[n:]
	}
}

// fencing compares that every entry the transaction holds still exists
// as it was granted: a transaction whose lease expired cannot commit.
func (t *tx) fencing() []clientv3.Cmp {
	cmps := make([]clientv3.Cmp, len(t.locks.held))
	for i, h := range t.locks.held {
		cmps[i] = clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)
	}
	return cmps
}

// lostLock returns the lock-lost error of the first held entry that no
// longer exists, if any (after a failed commit).
func (t *tx) lostLock() error {
	ctx, cancel := context.WithTimeout(context.Background(), withdrawTimeout)
	defer cancel()
	for i := range t.locks.held {
		h := &t.locks.held[i]
		resp, err := t.e.cli.Get(ctx, h.key, clientv3.WithKeysOnly())
		if err != nil {
			return nil
		}
		if len(resp.Kvs) == 0 || resp.Kvs[0].CreateRevision != h.rev {
			return lockLost(t.id, h)
		}
	}
	return nil
}
