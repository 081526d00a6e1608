package etcdkv_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

// Deadlocks across handles: the waiters publish their edges, the elected
// detector finds the cycle and aborts the youngest (detector.go).

// handles opens n handles of one new database with o, returning them and
// the prefix; handle i is opened after the election has a candidate, so
// handle 0 is the first detector.
func handles(t *testing.T, n int, o etcdkv.Options) ([]*txkv.DB, string) {
	t.Helper()
	o.Prefix = testPrefix(t)
	dbs := make([]*txkv.DB, n)
	for i := range dbs {
		dbs[i] = openHandle(t, i, o)
		if i == 0 && o.DeadlockInterval >= 0 {
			detectorLease(t, newClient(t, 0), o.Prefix, 0)
		}
	}
	return dbs, o.Prefix
}

// detectorLease waits for a leader of the detector's election other than
// lease not, and returns its lease.
func detectorLease(t *testing.T, cli *clientv3.Client, prefix string, not int64) int64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := cli.Get(bg, prefix+"e/", clientv3.WithFirstCreate()...)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) > 0 && resp.Kvs[0].Lease != not {
			return resp.Kvs[0].Lease
		}
		if time.Now().After(deadline) {
			t.Fatalf("no detector elected other than lease %x", not)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lockIn locks key exclusively in tx.
func lockIn(t *testing.T, tx *txkv.Tx, key string) {
	t.Helper()
	if _, err := tx.GetForUpdate([]byte(key)); absentOK(err) != nil {
		t.Fatalf("GetForUpdate(%s): %v", key, err)
	}
}

func getForUpdate(tx *txkv.Tx, key string) func() error {
	return func() error { _, err := tx.GetForUpdate([]byte(key)); return absentOK(err) }
}

// wantVictim waits for the victim's error: a retryable *DeadlockError
// naming every key of the cycle. It returns how long it took.
func wantVictim(t *testing.T, ch <-chan error, victim *txkv.Tx, keys ...string) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case err := <-ch:
		var de *txkv.DeadlockError
		if !errors.As(err, &de) || !txkv.IsRetryable(err) {
			t.Fatalf("victim's wait = %v, want a retryable *DeadlockError", err)
		}
		if de.Victim != victim.ID() || len(de.Cycle) != len(keys) {
			t.Fatalf("DeadlockError %+v: want victim %d and %d edges", de, victim.ID(), len(keys))
		}
		for _, k := range keys {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", k)) {
				t.Fatalf("%v: does not name %q", err, k)
			}
		}
		t.Logf("%v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the deadlock was not found within 5 s")
	}
	return time.Since(start)
}

// twoHandleDeadlock runs T1 on a holding x and T2 on b holding y, each
// asking for the other's key: T2, the younger, is the victim, T1 commits.
func twoHandleDeadlock(t *testing.T, a, b *txkv.DB) time.Duration {
	t.Helper()
	t1 := begin(t, a, txkv.Pessimistic)
	lockIn(t, t1, "x")
	time.Sleep(2 * time.Millisecond) // T2 is younger
	t2 := begin(t, b, txkv.Pessimistic)
	lockIn(t, t2, "y")
	ch1 := async(getForUpdate(t1, "y"))
	waitQueued(t, a, t1)
	formed := time.Now()
	ch2 := async(getForUpdate(t2, "x"))
	wantVictim(t, ch2, t2, "x", "y")
	took := time.Since(formed)
	wantDone(t, ch1, "T1's GetForUpdate(y) after the victim's abort")
	if err := t1.Put([]byte("x"), []byte("t1")); err != nil {
		t.Fatal(err)
	}
	commit(t, t1)
	return took
}

func TestDeadlockAcrossHandles(t *testing.T) {
	dbs, _ := handles(t, 2, etcdkv.Options{LockTimeout: txkv.Forever})
	took := twoHandleDeadlock(t, dbs[0], dbs[1])
	t.Logf("found %v after the cycle formed", took)
	if de := dbs[1].LastDeadlock(); de == nil {
		t.Fatal("the victim's handle has no LastDeadlock")
	}
	if s := dbs[1].Stats(); s.Deadlocks != 1 {
		t.Fatalf("victim's handle: Stats.Deadlocks = %d, want 1", s.Deadlocks)
	}
}

// T1 → T2 → T3 → T1 over three handles: T3, the youngest, is the victim;
// then T2 and T1 get their locks in turn.
func TestDeadlockAcrossThreeHandles(t *testing.T) {
	dbs, prefix := handles(t, 3, etcdkv.Options{})
	var txs []*txkv.Tx
	for i, k := range []string{"a", "b", "c"} {
		tx := begin(t, dbs[i], txkv.Pessimistic)
		lockIn(t, tx, k)
		txs = append(txs, tx)
		time.Sleep(2 * time.Millisecond)
	}
	ch1 := async(getForUpdate(txs[0], "b"))
	waitQueued(t, dbs[0], txs[0])
	ch2 := async(getForUpdate(txs[1], "c"))
	waitQueued(t, dbs[1], txs[1])
	formed := time.Now()
	ch3 := async(getForUpdate(txs[2], "a"))
	wantVictim(t, ch3, txs[2], "a", "b", "c")
	t.Logf("found %v after the cycle formed", time.Since(formed))
	wantDone(t, ch2, "T2's GetForUpdate(c)")
	commit(t, txs[1])
	wantDone(t, ch1, "T1's GetForUpdate(b)")
	commit(t, txs[0])
	cli := newClient(t, 0)
	for _, sp := range []string{"w/", "a/"} {
		if resp, err := cli.Get(bg, prefix+sp, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
			t.Fatalf("%s after the waits: %v keys, %v", sp, resp.Count, err)
		}
	}
}

// With detection off the cycle stays until a lock timeout ends it.
func TestDeadlockDetectionOff(t *testing.T) {
	dbs, prefix := handles(t, 2, etcdkv.Options{DeadlockInterval: etcdkv.DeadlockDetectionOff})
	t1, err := dbs[0].Begin(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic, LockTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer t1.Rollback()
	lockIn(t, t1, "x")
	t2 := begin(t, dbs[1], txkv.Pessimistic)
	lockIn(t, t2, "y")
	ch1 := async(getForUpdate(t1, "y"))
	waitQueued(t, dbs[0], t1)
	ch2 := async(getForUpdate(t2, "x"))
	select {
	case err := <-ch1:
		wantLockErr(t, err, txkv.ErrLockTimeout)
	case err := <-ch2:
		t.Fatalf("T2 = %v, want it waiting until T1 times out", err)
	case <-time.After(5 * time.Second):
		t.Fatal("T1 did not time out")
	}
	t1.Rollback()
	wantDone(t, ch2, "T2 after T1's rollback")
	cli := newClient(t, 0)
	for _, sp := range []string{"w/", "e/"} {
		if resp, err := cli.Get(bg, prefix+sp, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Count != 0 {
			t.Fatalf("%s with detection off: %v keys, %v", sp, resp.Count, err)
		}
	}
}

// The detector's handle closed: another handle is elected and finds the
// next deadlock.
func TestDetectorHandleClosed(t *testing.T) {
	failover(t, 3, "closed", func(dbs []*txkv.DB, _ *clientv3.Client, _ int64) error { return dbs[0].Close() })
}

// The detector's session revoked (its process lost etcd): another handle
// is elected, and the old one stands again under a new session.
func TestDetectorSessionRevoked(t *testing.T) {
	failover(t, 2, "revoked", func(_ []*txkv.DB, cli *clientv3.Client, lease int64) error {
		_, err := cli.Revoke(bg, clientv3.LeaseID(lease))
		return err
	})
}

// failover opens n handles, ends the detector's leadership with end, waits
// for the next leader and has the last two handles deadlock.
func failover(t *testing.T, n int, how string, end func(dbs []*txkv.DB, cli *clientv3.Client, lease int64) error) {
	dbs, prefix := handles(t, n, etcdkv.Options{})
	cli := newClient(t, 0)
	first := detectorLease(t, cli, prefix, 0)
	if err := end(dbs, cli, first); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	next := detectorLease(t, cli, prefix, first)
	t.Logf("detector %x %s; %x elected after %v", first, how, next, time.Since(start))
	t.Logf("found %v after the cycle formed", twoHandleDeadlock(t, dbs[n-2], dbs[n-1]))
}

// A cycle through two transactions of one handle and one of another: the
// handle's registry sees only T1 → T2, the detector the whole cycle (every
// edge of a long wait is published, this handle's too). T3, the youngest,
// is the victim.
func TestDeadlockMixedHandles(t *testing.T) {
	dbs, _ := handles(t, 2, etcdkv.Options{})
	t1 := begin(t, dbs[0], txkv.Pessimistic)
	lockIn(t, t1, "a")
	t2 := begin(t, dbs[0], txkv.Pessimistic)
	lockIn(t, t2, "b")
	time.Sleep(2 * time.Millisecond)
	t3 := begin(t, dbs[1], txkv.Pessimistic)
	lockIn(t, t3, "c")
	ch1 := async(getForUpdate(t1, "b"))
	waitQueued(t, dbs[0], t1)
	ch2 := async(getForUpdate(t2, "c"))
	waitQueued(t, dbs[0], t2)
	formed := time.Now()
	ch3 := async(getForUpdate(t3, "a"))
	wantVictim(t, ch3, t3, "a", "b", "c")
	t.Logf("found %v after the cycle formed", time.Since(formed))
	wantDone(t, ch2, "T2's GetForUpdate(c)")
	commit(t, t2)
	wantDone(t, ch1, "T1's GetForUpdate(b)")
	commit(t, t1)
}

// Two Updates deadlock across handles on their first attempts: the
// younger loses, Update retries it, and both commit.
func TestDeadlockAcrossHandlesUpdateRetries(t *testing.T) {
	dbs, _ := handles(t, 2, etcdkv.Options{LockTimeout: txkv.Forever})
	locked := make(chan struct{}, 2)
	proceed := make(chan struct{})
	run := func(db *txkv.DB, mine, other string) func() error {
		attempts := 0
		return func() error {
			return db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
				attempts++
				if _, err := tx.GetForUpdate([]byte(mine)); absentOK(err) != nil {
					return err
				}
				if attempts == 1 {
					locked <- struct{}{}
					<-proceed
				}
				if _, err := tx.GetForUpdate([]byte(other)); absentOK(err) != nil {
					return err
				}
				return tx.Put([]byte(other), []byte(mine))
			})
		}
	}
	ch1 := async(run(dbs[0], "x", "y"))
	<-locked
	time.Sleep(2 * time.Millisecond) // the second is younger
	ch2 := async(run(dbs[1], "y", "x"))
	<-locked
	close(proceed)
	wantDone(t, ch1, "the older Update")
	wantDone(t, ch2, "the younger Update, retried")
	if d0, d1 := dbs[0].Stats().Deadlocks, dbs[1].Stats().Deadlocks; d0 != 0 || d1 != 1 {
		t.Fatalf("deadlock victims: %d on the older's handle, %d on the younger's; want 0 and 1", d0, d1)
	}
}

// TestAbortMarkerBeforeTheWatch: the abort watch starts at the current
// revision, so a marker the detector put between the wait's first
// publication and the watch's start is found by one read when the watch
// reports it was created; a marker older than the publication (a leftover)
// is not taken for this wait's.
func TestAbortMarkerBeforeTheWatch(t *testing.T) {
	cli := newClient(t, 0)
	err := etcdkv.AbortMarkerAroundPublication(cli, testPrefix(t), false)
	var de *txkv.DeadlockError
	if !errors.As(err, &de) || len(de.Cycle) != 2 {
		t.Fatalf("marker after the publication: %v, want a *DeadlockError with a 2-edge cycle", err)
	}
	if err := etcdkv.AbortMarkerAroundPublication(cli, testPrefix(t), true); err != nil {
		t.Fatalf("marker before the publication: %v, want nil", err)
	}
}
