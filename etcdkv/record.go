package etcdkv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/txkv/txkv"
)

// Transaction records decide ambiguous commits. A commit Txn that fails
// with an error the request may have outlived (the connection dropped, a
// timeout, a leader change) may or may not have been applied. So every
// commit Txn also creates a record <prefix>t/<txid>, under the compare
// CreateRevision(record) == 0: the commit applies at most once however
// often it is sent, and whether the record exists says whether it
// applied. See resolve for the rest.

// Record values: a commit writes committed; a resolution that finds the
// commit not applied writes aborted, which fences off the lost request.
const (
	recordCommitted = "c"
	recordAborted   = "a"
)

// DefaultRecordTTL is the default TTL of the lease records are bound to.
const DefaultRecordTTL = 10 * time.Minute

// Resolution pacing: an attempt that hangs (a member that stopped
// answering) is abandoned after resolveAttempt and sent again, with
// backoff, until the transaction's context ends.
var resolveRetry = txkv.RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 500 * time.Millisecond}

const resolveAttempt = 5 * time.Second

// record is one commit's transaction record: its etcd key and the lease
// that will delete it.
type record struct {
	key   string
	lease clientv3.LeaseID
}

// recordLeases hands out the lease new records are bound to. A lease is
// granted with TTL Options.RecordTTL and no keep-alive, and used for new
// records during the first half of its life only: every record lives
// between TTL/2 and TTL, then etcd deletes it with its lease. No goroutine,
// one LeaseGrant per TTL/2 per handle.
type recordLeases struct {
	mu      sync.Mutex // protects id and granted
	id      clientv3.LeaseID
	granted time.Time // before the grant was sent: the lease lives past granted+TTL
}

// newRecord returns a record with a new txid: 128 random bits from
// crypto/rand, so that no two records of any processes sharing the prefix
// collide (for a billion records the chance is about 10^-21) without
// coordination or state that a restart could reset.
func (e *eng) newRecord(ctx context.Context) (record, error) {
	lease, err := e.recordLease(ctx)
	if err != nil {
		return record{}, err
	}
	var id [16]byte
	rand.Read(id[:]) // never fails (crypto/rand panics rather)
	return record{key: e.ks.prefix + txnSpace + hex.EncodeToString(id[:]), lease: lease}, nil
}

// recordLease returns the lease for new records, granting one when there
// is none or the current one is past half its TTL. The grant is made
// without the mutex, so that a commit waits for it under its own context
// only: commits racing at a rollover may each grant one, and the leases
// not kept expire unused.
func (e *eng) recordLease(ctx context.Context) (clientv3.LeaseID, error) {
	r := &e.records
	ttl := e.opts.RecordTTL
	r.mu.Lock()
	id, fresh := r.id, r.id != 0 && time.Since(r.granted) < ttl/2
	r.mu.Unlock()
	if fresh {
		return id, nil
	}
	start := time.Now()
	resp, err := e.cli.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.id == 0 || start.After(r.granted) {
		r.id, r.granted = resp.ID, start
	}
	return resp.ID, nil
}

// dropLease forgets lease, which etcd no longer knows, so the next record
// gets a new one.
func (e *eng) dropLease(lease clientv3.LeaseID) {
	e.records.mu.Lock()
	defer e.records.mu.Unlock()
	if e.records.id == lease {
		e.records.id = 0
	}
}

// cmp is the commit's compare on its record: not created yet.
func (r record) cmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(r.key), "=", 0)
}

// put writes the record with value v, bound to its lease.
func (r record) put(v string) clientv3.Op {
	return clientv3.OpPut(r.key, v, clientv3.WithLease(r.lease))
}

// send sends the commit Txn c (its compares and writes include rec's) and
// reports whether it applied, with etcd's response when it answered. If the
// request fails in a way that leaves that unknown, resolve decides it (and
// there is no response: if it did not apply, the record is now fenced
// aborted). A lease etcd lost (revoked by hand, expired early) refuses the
// Txn outright: it is sent once more with a new record and lease.
func (t *tx) send(rec *record, c *commitTxn) (*clientv3.TxnResponse, bool, error) {
	for retried := false; ; retried = true {
		resp, err := t.e.cli.Txn(t.ctx).If(c.cmps...).Then(c.then...).Else(c.els...).Commit()
		switch {
		case err == nil:
			return resp, resp.Succeeded, nil
		case !definite(err):
			applied, err := t.resolve(*rec, c.cmps, c.then, err)
			return nil, applied, err
		case errors.Is(err, rpctypes.ErrLeaseNotFound) && !retried:
			t.e.dropLease(rec.lease)
			next, gerr := t.e.newRecord(t.ctx)
			if gerr != nil {
				return nil, false, gerr
			}
			*rec = next
			c.setRecord(next)
		default:
			return nil, false, err
		}
	}
}

// resolve decides a commit whose Txn failed ambiguously (cause). It sends
// the same Txn again with an Else branch, until the cluster answers or
// t.ctx ends:
//
//	If   the commit's compares, CreateRevision(record) == 0
//	Then the commit's writes, record = committed
//	Else If   CreateRevision(record) == 0
//	     Then record = aborted
//	     Else Get(record)
//
// Either the commit applies now, or the record says what happened: found
// committed, the lost request applied; found aborted, an earlier attempt
// of this loop fenced it off; not found, this attempt writes aborted, so
// the lost request, if it is still on its way, fails its record compare.
// Sending again is safe: the record compare makes the commit apply at most
// once. Sending the writes again rather than only reading the record saves
// a round trip and a retry of the whole transaction when the first request
// never arrived; its compares still validate it, at its new revision.
//
// The record's lease is part of every Put: if it expired (the resolution
// outlasted TTL/2), etcd refuses the Txn and the outcome stays unknown.
func (t *tx) resolve(rec record, cmps []clientv3.Cmp, ops []clientv3.Op, cause error) (bool, error) {
	fence := clientv3.OpTxn([]clientv3.Cmp{rec.cmp()},
		[]clientv3.Op{rec.put(recordAborted)}, []clientv3.Op{clientv3.OpGet(rec.key)})
	last := cause
	for attempt := 1; ; attempt++ {
		if err := t.resolvable(); err != nil {
			return false, unknownErr(rec, cause, err)
		}
		ctx, cancel := context.WithTimeout(t.ctx, resolveAttempt)
		resp, err := t.e.cli.Txn(ctx).If(cmps...).Then(ops...).Else(fence).Commit()
		cancel()
		switch {
		case err == nil:
			return decided(rec, resp)
		case definite(err) && !transient(err):
			return false, unknownErr(rec, cause, err)
		}
		last = err
		if err := sleepBackoff(t.ctx, resolveRetry, attempt); err != nil {
			return false, unknownErr(rec, cause, fmt.Errorf("%w (last attempt: %w)", err, last))
		}
	}
}

// resolvable returns why resolution must stop, if it must: the
// transaction's context ended, or the DB or its client was closed.
func (t *tx) resolvable() error {
	switch {
	case t.ctx.Err() != nil:
		return t.ctx.Err()
	case t.e.closed.Load():
		return txkv.ErrClosed
	case t.e.cli.Ctx().Err() != nil:
		return fmt.Errorf("the etcd client was closed: %w", t.e.cli.Ctx().Err())
	}
	return nil
}

// decided reads a resolution Txn's response (see resolve).
func decided(rec record, resp *clientv3.TxnResponse) (bool, error) {
	if resp.Succeeded {
		return true, nil
	}
	fenced := resp.Responses[0].GetResponseTxn()
	if fenced.Succeeded {
		return false, nil
	}
	kvs := fenced.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 { // cannot happen: the record existed a moment before, in the same Txn
		return false, fmt.Errorf("%w: etcdkv: transaction record %s vanished during its resolution", txkv.ErrCommitUnknown, rec.key)
	}
	return string(kvs[0].Value) == recordCommitted, nil
}

func unknownErr(rec record, cause, why error) error {
	return fmt.Errorf("%w: etcdkv: the commit Txn failed (%w) and its transaction record %s could not be read: %w",
		txkv.ErrCommitUnknown, cause, rec.key, why)
}

// definite reports whether err is etcd refusing a request (invalid, too
// large, a lease or key not found, a compacted revision, no permission):
// then it was not applied. Anything else — unavailable, timed out, leader
// changed or lost, connection closed, context ended, unknown — may have
// been applied.
func definite(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	switch grpcCode(err) {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.OutOfRange, codes.ResourceExhausted,
		codes.Unimplemented:
		return true
	}
	return false
}

// transient reports whether a definite refusal may pass when sent again
// (etcd's too many requests).
func transient(err error) bool { return grpcCode(err) == codes.ResourceExhausted }

func grpcCode(err error) codes.Code {
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code()
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Unknown
}

// commitErr maps an error of send: an unknown outcome stays what it is,
// even if the context ended meanwhile.
func (t *tx) commitErr(err error) error {
	if errors.Is(err, txkv.ErrCommitUnknown) {
		return err
	}
	return t.mapErr(err)
}
