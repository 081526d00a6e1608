package etcdkv_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
	"github.com/txkv/txkv/internal/conformance"
)

// The conformance suite on etcd: Pessimistic, Optimistic and Hybrid at
// Serializable and Snapshot, sized down for round trips, on one handle.
// Adaptive runs as Hybrid over etcd, so its rows would test Hybrid again
// under a name whose local behaviour (MOCC, steering) etcdkv does not
// have. The suite wants lock waits without a bound: its deadlocks are
// within one handle, which finds them.
var target = conformance.Target{
	Open: func(t testing.TB) *txkv.DB {
		return openWith(t, 1, etcdkv.Options{LockTimeout: txkv.Forever})[0]
	},
	Strategies: []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid},
	Scale:      5,
}

func TestLostUpdateInterleaved(t *testing.T)  { conformance.LostUpdateInterleaved(t, target) }
func TestLostUpdateConcurrent(t *testing.T)   { conformance.LostUpdateConcurrent(t, target) }
func TestWriteSkewPointReads(t *testing.T)    { conformance.WriteSkewPointReads(t, target) }
func TestWriteSkewRangeReads(t *testing.T)    { conformance.WriteSkewRangeReads(t, target) }
func TestWriteSkewPhantomInsert(t *testing.T) { conformance.WriteSkewPhantomInsert(t, target) }
func TestWriteSkewConcurrentSerializable(t *testing.T) {
	conformance.WriteSkewConcurrentSerializable(t, target)
}
func TestSimpleWriteSkew(t *testing.T) { conformance.SimpleWriteSkew(t, target) }
func TestSimpleWriteSkewSerialOrders(t *testing.T) {
	conformance.SimpleWriteSkewSerialOrders(t, target)
}
func TestPhantom(t *testing.T)           { conformance.Phantom(t, target) }
func TestPhantomDelete(t *testing.T)     { conformance.PhantomDelete(t, target) }
func TestDirtyWrite(t *testing.T)        { conformance.DirtyWrite(t, target) }
func TestDirtyRead(t *testing.T)         { conformance.DirtyRead(t, target) }
func TestReadSkew(t *testing.T)          { conformance.ReadSkew(t, target) }
func TestNonRepeatableRead(t *testing.T) { conformance.NonRepeatableRead(t, target) }
func TestBank(t *testing.T)              { conformance.Bank(t, target) }

func TestElleSerializable(t *testing.T) { conformance.ElleSerializable(t, target, 300, 1) }
func TestElleSnapshot(t *testing.T)     { conformance.ElleSnapshot(t, target, 300, 1) }

// TestLinearizable: Get, Put, CompareAndSwap and Increment over 4 handles
// of one database are linearizable.
func TestLinearizable(t *testing.T) { conformance.Linearizable(t, openN(t, 4), 1, 60) }

// Strategies side by side on the same keys: the lock entries of
// Pessimistic and Hybrid retries and the commit compares of Optimistic
// attempts keep one another honest.
func TestLostUpdateMixedStrategies(t *testing.T) { conformance.LostUpdateMixedStrategies(t, target) }
func TestElleSerializableMixed(t *testing.T) {
	conformance.ElleSerializableMixed(t, target.Open(t), target, 300, 1)
}

// TestBankMixedTwoHandles is the bank with 10 accounts over two handles
// (two sessions, as two processes): the conformance bank (a Pessimistic,
// an Optimistic and a Hybrid writer, readers of every strategy; lock waits
// without a bound) on one; on the other meanwhile Optimistic transfers,
// whose commits queue for locks on their write sets, and Pessimistic
// readers that lock the whole bank shared, with a 200 ms lock timeout. A
// deadlock across the handles (doc.go: not detected) ends when the second
// handle's wait times out: its reader tries again, its commit fails with
// a retryable conflict.
func TestBankMixedTwoHandles(t *testing.T) {
	dbs := openWith(t, 1, etcdkv.Options{LockTimeout: txkv.Forever})
	other, err := etcdkv.Open(newClient(t, 1), &etcdkv.Options{Prefix: fmt.Sprintf("test/%d/", testSeq.Load()),
		LockTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	dbs = append(dbs, other)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		otherHandle(t, dbs[1], 10, stop)
	}()
	conformance.BankOn(t, dbs[0], target, 10, 20)
	close(stop)
	wg.Wait()
}

// otherHandle alternates an Optimistic transfer and a Pessimistic sum of
// the bank's accounts once they exist, until stop.
func otherHandle(t *testing.T, db *txkv.DB, accounts int, stop <-chan struct{}) {
	last := []byte(fmt.Sprintf("acct/%d", accounts-1)) // the bank creates it last
	for {
		if _, err := db.Get(bg, last); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	retry := &txkv.RetryPolicy{MaxAttempts: 10000, BaseDelay: 10 * time.Microsecond, MaxDelay: time.Millisecond}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		a, b := fmt.Sprintf("acct/%d", i%accounts), fmt.Sprintf("acct/%d", (i*7+3)%accounts)
		err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Optimistic, Retry: retry}, func(tx *txkv.Tx) error {
			return transfer(tx, a, b)
		})
		if err != nil {
			t.Errorf("optimistic transfer on the second handle: %v", err)
			return
		}
		total := 0
		err = db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
			total = 0
			return tx.Scan([]byte("acct/"), []byte("acct0"), func(_, v []byte) error {
				n, err := strconv.Atoi(string(v))
				total += n
				return err
			})
		})
		if errors.Is(err, txkv.ErrLockTimeout) {
			continue
		}
		if err != nil || total != accounts*100 {
			t.Errorf("pessimistic sum on the second handle: %d, %v", total, err)
			return
		}
	}
}

func transfer(tx *txkv.Tx, a, b string) error {
	if a == b {
		return nil
	}
	for _, m := range []struct {
		k     string
		delta int
	}{{a, -1}, {b, 1}} {
		v, err := tx.Get([]byte(m.k))
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(string(v))
		if err := tx.Put([]byte(m.k), []byte(strconv.Itoa(n+m.delta))); err != nil {
			return err
		}
	}
	return nil
}

// TestConformanceSpread runs the suite again on three members
// (TXKV_ETCD_MEMBERS=3, as CI does) with each test's DB made of 4 handles
// spread over the members (openSpread), so its concurrent transactions run
// through different members. Optimistic only: the suite's scheduler
// learns that a step blocks from the DB's lock table (Locks, WaitingOn),
// and a handle shows only its own transactions' locks — a blocked step of
// one handle waiting on another's lock is not seen as blocked. Locking
// strategies across handles are tested by the detector's, the bank's and
// the process tests instead.
func TestConformanceSpread(t *testing.T) {
	if len(endpoints) < 2 {
		t.Skip("one member: TXKV_ETCD_MEMBERS=3 spreads the handles over three")
	}
	spread := conformance.Target{
		Open:       func(t testing.TB) *txkv.DB { return openSpread(t, 4) },
		Strategies: []txkv.Strategy{txkv.Optimistic},
		Scale:      target.Scale,
	}
	for _, c := range []struct {
		name string
		run  func(*testing.T, conformance.Target)
	}{
		{"LostUpdateInterleaved", conformance.LostUpdateInterleaved},
		{"LostUpdateConcurrent", conformance.LostUpdateConcurrent},
		{"WriteSkewPointReads", conformance.WriteSkewPointReads},
		{"WriteSkewRangeReads", conformance.WriteSkewRangeReads},
		{"WriteSkewPhantomInsert", conformance.WriteSkewPhantomInsert},
		{"WriteSkewConcurrentSerializable", conformance.WriteSkewConcurrentSerializable},
		{"SimpleWriteSkew", conformance.SimpleWriteSkew},
		{"Phantom", conformance.Phantom},
		{"PhantomDelete", conformance.PhantomDelete},
		{"DirtyWrite", conformance.DirtyWrite},
		{"DirtyRead", conformance.DirtyRead},
		{"ReadSkew", conformance.ReadSkew},
		{"NonRepeatableRead", conformance.NonRepeatableRead},
		{"Bank", conformance.Bank},
		{"ElleSerializable", func(t *testing.T, tg conformance.Target) { conformance.ElleSerializable(t, tg, 300, 1) }},
		{"ElleSnapshot", func(t *testing.T, tg conformance.Target) { conformance.ElleSnapshot(t, tg, 300, 1) }},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, spread) })
	}
}
