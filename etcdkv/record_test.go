package etcdkv_test

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

// Fault injection for ambiguous commits: faultKV wraps a client's KV and
// applies a plan to its conditional Txns (commits, resolutions): each
// fault in turn, then none.

type faultKind int

const (
	applyThenFail faultKind = iota + 1 // the Txn applies, the client sees an error
	failUnapplied                      // the Txn is not sent, the client sees an error
	delay                              // like failUnapplied, but the Txn is kept to send later (late)
	down                               // every conditional Txn fails unapplied until the plan changes
)

type fault struct {
	kind faultKind
	err  error  // the error the client sees
	then func() // runs before the error is returned
}

type faultKV struct {
	clientv3.KV
	mu          sync.Mutex
	plan        []fault
	late        []clientv3.Txn // the delayed Txns
	resolutions atomic.Int64   // Txns with an Else branch sent: resolutions of ambiguous commits
}

func (f *faultKV) setPlan(p ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plan = p
}

func (f *faultKV) next() (fault, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.plan) == 0 {
		return fault{}, false
	}
	ft := f.plan[0]
	if ft.kind != down {
		f.plan = f.plan[1:]
	}
	return ft, true
}

func (f *faultKV) Txn(ctx context.Context) clientv3.Txn {
	return &faultTxn{Txn: f.KV.Txn(ctx), kv: f}
}

type faultTxn struct {
	clientv3.Txn
	kv              *faultKV
	conditional, or bool
}

func (t *faultTxn) If(cs ...clientv3.Cmp) clientv3.Txn {
	t.conditional = t.conditional || len(cs) > 0
	t.Txn = t.Txn.If(cs...)
	return t
}

func (t *faultTxn) Then(ops ...clientv3.Op) clientv3.Txn {
	t.Txn = t.Txn.Then(ops...)
	return t
}

func (t *faultTxn) Else(ops ...clientv3.Op) clientv3.Txn {
	t.or = t.or || len(ops) > 0
	t.Txn = t.Txn.Else(ops...)
	return t
}

func (t *faultTxn) Commit() (*clientv3.TxnResponse, error) {
	if t.or {
		t.kv.resolutions.Add(1)
	}
	ft, ok := t.kv.next()
	if !t.conditional || !ok {
		return t.Txn.Commit()
	}
	switch ft.kind {
	case applyThenFail:
		if _, err := t.Txn.Commit(); err != nil {
			return nil, err
		}
	case delay:
		t.kv.mu.Lock()
		t.kv.late = append(t.kv.late, t.Txn)
		t.kv.mu.Unlock()
	}
	if ft.then != nil {
		ft.then()
	}
	return nil, ft.err
}

// Errors a client sees when the request may have been applied: the
// connection closed under it, and etcd's own request timeout.
var (
	errConnClosed = status.Error(codes.Unavailable, "error reading from server: EOF")
	errTimedOut   = rpctypes.ErrTimeout
)

// faulty is a DB whose client injects faults, with a clean client of the
// same cluster for the test's own reads and writes.
type faulty struct {
	db     *txkv.DB
	kv     *faultKV
	cli    *clientv3.Client // clean
	prefix string
}

func openFaulty(t *testing.T) *faulty {
	t.Helper()
	cli := newClient(t, 0)
	fk := &faultKV{KV: cli.KV}
	cli.KV = fk
	prefix := testPrefix(t)
	// No detector: its campaign and rounds would meet the injected faults.
	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: prefix, DeadlockInterval: etcdkv.DeadlockDetectionOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &faulty{db: db, kv: fk, cli: newClient(t, 1), prefix: prefix}
}

// counter reads data key k as a decimal number (absent: 0).
func (f *faulty) counter(t *testing.T, k string) int {
	t.Helper()
	resp, err := f.cli.Get(bg, f.prefix+"d/"+k)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(string(resp.Kvs[0].Value))
	return n
}

// records returns the values of the DB's transaction records.
func (f *faulty) records(t *testing.T) []string {
	t.Helper()
	resp, err := f.cli.Get(bg, f.prefix+"t/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	var vs []string
	for _, kv := range resp.Kvs {
		vs = append(vs, string(kv.Value))
	}
	return vs
}

// incr adds 1 to counter key k in one transaction.
func incr(ctx context.Context, db *txkv.DB, k string) error {
	return db.Update(ctx, nil, func(tx *txkv.Tx) error { return incrIn(tx, k) })
}

func incrIn(tx *txkv.Tx, k string) error {
	v, err := tx.Get([]byte(k))
	if err != nil && !errors.Is(err, txkv.ErrNotFound) {
		return err
	}
	n, _ := strconv.Atoi(string(v))
	return tx.Put([]byte(k), []byte(strconv.Itoa(n+1)))
}

// TestAmbiguousCommitExactlyOnce: whatever the fault on the commit Txn and
// on its resolutions — applied or not, the connection closed or etcd timed
// out — the commit succeeds and applies exactly once.
func TestAmbiguousCommitExactlyOnce(t *testing.T) {
	cases := []struct {
		name string
		plan []fault
	}{
		{"applied/conn-closed", []fault{{kind: applyThenFail, err: errConnClosed}}},
		{"applied/timed-out", []fault{{kind: applyThenFail, err: errTimedOut}}},
		{"unapplied/conn-closed", []fault{{kind: failUnapplied, err: errConnClosed}}},
		{"unapplied/timed-out", []fault{{kind: failUnapplied, err: errTimedOut}}},
		{"applied-twice", []fault{{kind: applyThenFail, err: errConnClosed}, {kind: applyThenFail, err: errTimedOut}}},
		{"unapplied-then-applied", []fault{{kind: failUnapplied, err: errConnClosed},
			{kind: failUnapplied, err: errTimedOut}, {kind: applyThenFail, err: errConnClosed}}},
		{"unapplied/deadline", []fault{{kind: failUnapplied, err: context.DeadlineExceeded}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := openFaulty(t)
			f.kv.setPlan(c.plan...)
			if err := incr(bg, f.db, "n"); err != nil {
				t.Fatalf("Update: %v", err)
			}
			if n := f.counter(t, "n"); n != 1 {
				t.Fatalf("counter = %d after one increment, want 1", n)
			}
			if rs := f.records(t); len(rs) != 1 || rs[0] != "c" {
				t.Fatalf("records %q, want one committed", rs)
			}
			// Commit (not Update) resolves the same way.
			f.kv.setPlan(c.plan...)
			tx, err := f.db.Begin(bg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := incrIn(tx, "n"); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if n := f.counter(t, "n"); n != 2 {
				t.Fatalf("counter = %d after two increments, want 2", n)
			}
			// So does a single-key write: Increment is a one-key transaction.
			f.kv.setPlan(c.plan...)
			if n, err := f.db.Increment(bg, []byte("c"), 1); n != 1 || err != nil {
				t.Fatalf("Increment = %d, %v; want 1", n, err)
			}
			if v, err := f.db.Get(bg, []byte("c")); err != nil || binary.BigEndian.Uint64(v) != 1 {
				t.Fatalf("counter c = %x, %v after one Increment, want 1", v, err)
			}
		})
	}
}

// TestAmbiguousCommitLateRequest: a commit request delayed past its
// resolution does not apply afterwards. If the resolution applied the
// commit, the late request fails its record compare; if the resolution
// found a conflict, it fenced the record (aborted), and the late request
// fails on that, even when its other compares would pass again (a key read
// as absent, created and deleted meanwhile).
func TestAmbiguousCommitLateRequest(t *testing.T) {
	t.Run("resolution-applied", func(t *testing.T) {
		f := openFaulty(t)
		f.kv.setPlan(fault{kind: delay, err: errConnClosed})
		if err := incr(bg, f.db, "n"); err != nil {
			t.Fatal(err)
		}
		f.sendLate(t)
		if n := f.counter(t, "n"); n != 1 {
			t.Fatalf("counter = %d, want 1", n)
		}
	})
	t.Run("resolution-fenced", func(t *testing.T) {
		f := openFaulty(t)
		x := f.prefix + "d/x"
		f.kv.setPlan(fault{kind: delay, err: errConnClosed, then: func() {
			if _, err := f.cli.Put(bg, x, "1"); err != nil {
				t.Error(err)
			}
		}})
		calls := 0
		err := f.db.Update(bg, nil, func(tx *txkv.Tx) error {
			calls++
			if _, err := tx.Get([]byte("x")); err != nil && !errors.Is(err, txkv.ErrNotFound) {
				return err
			}
			// A blind write: the late request's only compares are x's and
			// its record's.
			return tx.Put([]byte("w"), []byte(strconv.Itoa(calls)))
		})
		if err != nil || calls != 2 {
			t.Fatalf("Update: %v after %d calls, want nil after 2 (a conflict, retried)", err, calls)
		}
		if rs := f.records(t); len(rs) != 2 || rs[0] == rs[1] {
			t.Fatalf("records %q, want one aborted and one committed", rs)
		}
		if _, err := f.cli.Delete(bg, x); err != nil { // x reads absent again
			t.Fatal(err)
		}
		f.sendLate(t)
		if w := f.counter(t, "w"); w != 2 {
			t.Fatalf("w = %d, want 2 (the second attempt's)", w)
		}
	})
}

// sendLate sends the delayed Txns; none may apply.
func (f *faulty) sendLate(t *testing.T) {
	t.Helper()
	f.kv.mu.Lock()
	late := f.kv.late
	f.kv.mu.Unlock()
	if len(late) == 0 {
		t.Fatal("no delayed request")
	}
	for _, tx := range late {
		resp, err := tx.Commit()
		if err != nil {
			t.Fatal(err)
		}
		if resp.Succeeded {
			t.Fatal("the delayed commit request applied after its resolution")
		}
	}
}

// TestAmbiguousCommitUnknown: when the cluster does not answer before the
// context ends, or the record's lease is gone, the commit fails with
// ErrCommitUnknown (and the context's error).
func TestAmbiguousCommitUnknown(t *testing.T) {
	t.Run("context-ends", func(t *testing.T) {
		f := openFaulty(t)
		f.kv.setPlan(fault{kind: down, err: errConnClosed})
		ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
		defer cancel()
		err := incr(ctx, f.db, "n")
		if !errors.Is(err, txkv.ErrCommitUnknown) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Update = %v, want ErrCommitUnknown and DeadlineExceeded", err)
		}
		if txkv.IsRetryable(err) {
			t.Fatalf("%v is retryable", err)
		}
		t.Log(err)
		f.kv.setPlan()
		if n := f.counter(t, "n"); n != 0 {
			t.Fatalf("counter = %d, want 0 (nothing was sent)", n)
		}
	})
	t.Run("lease-gone", func(t *testing.T) {
		f := openFaulty(t)
		f.kv.setPlan(fault{kind: applyThenFail, err: errConnClosed, then: func() { f.revokeRecords(t) }})
		if err := incr(bg, f.db, "n"); !errors.Is(err, txkv.ErrCommitUnknown) {
			t.Fatalf("Update = %v, want ErrCommitUnknown", err)
		}
		// The next commit gets a new lease.
		if err := incr(bg, f.db, "n"); err != nil {
			t.Fatalf("Update after the lease was revoked: %v", err)
		}
		if n := f.counter(t, "n"); n != 2 {
			t.Fatalf("counter = %d, want 2", n)
		}
	})
}

// revokeRecords revokes the leases of the DB's records.
func (f *faulty) revokeRecords(t *testing.T) {
	resp, err := f.cli.Get(bg, f.prefix+"t/", clientv3.WithPrefix())
	if err != nil {
		t.Error(err)
		return
	}
	for _, kv := range resp.Kvs {
		if _, err := f.cli.Revoke(bg, clientv3.LeaseID(kv.Lease)); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Error(err)
		}
	}
}

// TestRecordLease: records are bound to a lease of about RecordTTL.
func TestRecordLease(t *testing.T) {
	f := openFaulty(t)
	if err := incr(bg, f.db, "n"); err != nil {
		t.Fatal(err)
	}
	resp, err := f.cli.Get(bg, f.prefix+"t/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("records: %v, %v", resp, err)
	}
	ttl, err := f.cli.TimeToLive(bg, clientv3.LeaseID(resp.Kvs[0].Lease))
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(etcdkv.DefaultRecordTTL / time.Second); ttl.GrantedTTL != want {
		t.Fatalf("the record's lease was granted for %d s, want %d", ttl.GrantedTTL, want)
	}
}

// TestRecordLeaseRollover: a records lease serves new records for half its
// TTL only; the records of the old lease stay until it expires.
func TestRecordLeaseRollover(t *testing.T) {
	cli := newClient(t, 0)
	prefix := testPrefix(t)
	db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: prefix, RecordTTL: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	leases := func() map[int64]int {
		t.Helper()
		resp, err := cli.Get(bg, prefix+"t/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]int{}
		for _, kv := range resp.Kvs {
			m[kv.Lease]++
		}
		return m
	}
	for range 2 {
		if err := incr(bg, db, "n"); err != nil {
			t.Fatal(err)
		}
	}
	if m := leases(); len(m) != 1 {
		t.Fatalf("records by lease %v, want 2 records of one lease", m)
	}
	time.Sleep(2600 * time.Millisecond) // past half the TTL
	if err := incr(bg, db, "n"); err != nil {
		t.Fatal(err)
	}
	if m := leases(); len(m) != 2 {
		t.Fatalf("records by lease %v, want the old lease's 2 and a new lease's 1", m)
	}
}
