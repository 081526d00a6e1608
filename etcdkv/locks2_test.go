package etcdkv_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
	"github.com/txkv/txkv/internal/conformance"
)

// SKIP LOCKED: a second claimer skips the rows the first holds; the limit
// counts what is returned.
func TestSkipLocked(t *testing.T) {
	dbs := openN(t, 2)
	for i := range 6 {
		conformance.MustPut(t, dbs[0], fmt.Sprintf("job/%d", i), "todo")
	}
	t1, t2 := begin(t, dbs[0], txkv.Optimistic), begin(t, dbs[1], txkv.Optimistic)
	got1, err := t1.ScanForUpdate([]byte("job/"), []byte("job0"), 2, txkv.SkipLocked())
	if err != nil || len(got1) != 2 || string(got1[0].Key) != "job/0" || string(got1[1].Key) != "job/1" {
		t.Fatalf("T1 claimed %v, %v; want job/0 and job/1", got1, err)
	}
	got2, err := t2.ScanForUpdate([]byte("job/"), []byte("job0"), 3, txkv.SkipLocked())
	if err != nil || len(got2) != 3 || string(got2[0].Key) != "job/2" || string(got2[0].Value) != "todo" {
		t.Fatalf("T2 claimed %v, %v; want job/2..job/4", got2, err)
	}
	t3 := begin(t, dbs[1], txkv.Optimistic)
	if _, err := t3.ScanForUpdate([]byte("job/"), []byte("job0"), 0, txkv.NoWait()); !errors.Is(err, txkv.ErrLockNotAvailable) {
		t.Fatalf("NoWait over claimed rows = %v, want ErrLockNotAvailable", err)
	}
	got3, err := t3.ScanForUpdate([]byte("job/"), []byte("job0"), 0, txkv.SkipLocked())
	if err != nil || len(got3) != 1 || string(got3[0].Key) != "job/5" {
		t.Fatalf("T3 claimed %v, %v; want job/5 only", got3, err)
	}
}

// A job queue: workers on two handles claim one job at a time with SKIP
// LOCKED, mark it done and delete it. Every job is done exactly once.
func TestSkipLockedJobQueue(t *testing.T) {
	dbs := openN(t, 2)
	const jobs, workers = 30, 4
	for i := range jobs {
		conformance.MustPut(t, dbs[0], fmt.Sprintf("queue/%03d", i), "todo")
	}
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error { return work(dbs[w%2], w) })
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	done := 0
	err := dbs[1].View(bg, func(tx *txkv.Tx) error {
		return tx.Scan([]byte("done/"), []byte("done0"), func(_, _ []byte) error { done++; return nil })
	})
	if err != nil || done != jobs {
		t.Fatalf("%d jobs done (%v), want %d", done, err, jobs)
	}
}

// work claims and completes jobs until the queue is empty.
func work(db *txkv.DB, w int) error {
	for {
		claimed := 0
		err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
			kvs, err := tx.ScanForUpdate([]byte("queue/"), []byte("queue0"), 1, txkv.SkipLocked())
			if err != nil || len(kvs) == 0 {
				return err
			}
			claimed = len(kvs)
			job := kvs[0].Key[len("queue/"):]
			if _, err := tx.Get(append([]byte("done/"), job...)); !errors.Is(err, txkv.ErrNotFound) {
				return fmt.Errorf("worker %d: job %s done twice (%v)", w, job, err)
			}
			if err := tx.Put(append([]byte("done/"), job...), []byte(fmt.Sprint(w))); err != nil {
				return err
			}
			return tx.Delete(kvs[0].Key)
		})
		if err != nil {
			return err
		}
		if claimed == 0 {
			return nil
		}
	}
}

// A range lock holds off point writers inside it, not outside; a point
// lock inside a range holds off the range.
func TestRangeLockVsPointWriters(t *testing.T) {
	dbs := openN(t, 2)
	t1 := begin(t, dbs[0], txkv.Pessimistic)
	if err := t1.LockRange([]byte("b"), []byte("d"), txkv.Exclusive); err != nil {
		t.Fatal(err)
	}
	t2 := begin(t, dbs[1], txkv.Pessimistic)
	if err := t2.Put([]byte("d"), []byte("2")); err != nil {
		t.Fatalf("a write at the range's end: %v", err)
	}
	w := async(func() error { return t2.Put([]byte("c"), []byte("2")) })
	waitQueued(t, dbs[1], t2)
	// An optimistic writer into the range queues at commit, then gives up
	// with a retryable conflict.
	err := dbs[1].Update(bg, &txkv.TxOptions{Retry: &txkv.RetryPolicy{MaxAttempts: 1}, LockTimeout: 100 * time.Millisecond},
		func(tx *txkv.Tx) error { return tx.Put([]byte("b"), []byte("o")) })
	var ce *txkv.ConflictError
	if !errors.As(err, &ce) || ce.Reason != etcdkv.ReasonWriteLocked || string(ce.Key) != "b" {
		t.Fatalf("optimistic write into a locked range = %v, want a write-locked conflict on b", err)
	}
	wantPending(t, w, "T2's write inside T1's range")
	commit(t, t1)
	wantDone(t, w, "T2's write after the range holder ended")
	commit(t, t2)
	conformance.WantValue(t, dbs[0], "c", "2")
	conformance.WantAbsent(t, dbs[0], "b")

	t3 := begin(t, dbs[0], txkv.Pessimistic)
	if _, err := t3.GetForUpdate([]byte("c")); err != nil {
		t.Fatal(err)
	}
	t4 := begin(t, dbs[1], txkv.Pessimistic)
	if err := t4.LockRange([]byte("a"), nil, txkv.Shared, txkv.NoWait()); !errors.Is(err, txkv.ErrLockNotAvailable) {
		t.Fatalf("S range over an X point = %v, want ErrLockNotAvailable", err)
	}
	if err := t4.LockRange([]byte("a"), []byte("c"), txkv.Shared, txkv.NoWait()); err != nil {
		t.Fatalf("S range ending at the X point: %v", err)
	}
}

// Fencing: revoking the session's lease mid-transaction removes its lock
// entries; its commit then fails with a retryable lock-lost conflict and
// writes nothing. The handle starts a new session for later transactions.
func TestFencingLeaseRevoked(t *testing.T) {
	db, cli, prefix := open1Raw(t)
	conformance.MustPut(t, db, "k", "v0")
	tx := begin(t, db, txkv.Pessimistic)
	if _, err := tx.GetForUpdate([]byte("k")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put([]byte("k"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put([]byte("k2"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Get(bg, prefix+"l/", clientv3.WithPrefix())
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("no lock entry (%v)", err)
	}
	if _, err := cli.Revoke(bg, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	err = tx.Commit()
	var ce *txkv.ConflictError
	if !errors.As(err, &ce) || ce.Reason != etcdkv.ReasonLockLost || !txkv.IsRetryable(err) {
		t.Fatalf("commit after the lease was revoked = %v, want a retryable lock-lost conflict", err)
	}
	conformance.WantValue(t, db, "k", "v0")
	conformance.WantAbsent(t, db, "k2")
	// A new session serves the next transaction.
	err = db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
		return tx.Put([]byte("k"), []byte("v2"))
	})
	if err != nil {
		t.Fatalf("a transaction after the lease was lost: %v", err)
	}
	conformance.WantValue(t, db, "k", "v2")
}
