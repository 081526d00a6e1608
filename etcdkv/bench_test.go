package etcdkv_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

// BenchmarkBank compares etcdkv's Optimistic transactions (impl=etcdkv)
// and Pessimistic ones (impl=etcdkv-pessimistic: both accounts locked
// exclusive first, in one LockKeys request, as the guide's bank does) with
// etcd's own STM (concurrency.NewSTM at its Serializable isolation) on the
// cluster of the tests, running the same transfer (read two accounts,
// write both) with 10 and 1,000 accounts and 4 and 16 workers. Besides ns/op it reports
// txn/s, aborts/commit (attempts that did not commit, per commit) and
// roundtrips/txn (KV requests per committed transfer, counted on the
// client).
//
// The two differ in what they do on a conflict: Update backs off (1 ms ..
// 100 ms with jitter) and runs the function again from scratch; the STM
// retries at once, with the conflicting keys prefetched by its failed
// commit (one round trip less). And each etcdkv commit also writes its
// transaction record.
//
//	go test -run '^$' -bench Bank -benchtime 2s -count 6 . >bank.txt
//	benchstat -col /impl bank.txt
func BenchmarkBank(b *testing.B) {
	for _, impl := range []string{"etcdkv", "etcdkv-pessimistic", "stm"} {
		for _, accounts := range []int{10, 1000} {
			for _, workers := range []int{4, 16} {
				b.Run(fmt.Sprintf("impl=%s/accounts=%d/workers=%d", impl, accounts, workers), func(b *testing.B) {
					benchBank(b, impl, accounts, workers)
				})
			}
		}
	}
}

// transferFunc moves 1 from account a to account b, reporting each attempt.
type transferFunc func(ctx context.Context, a, b int, attempt func()) error

func benchBank(b *testing.B, impl string, accounts, workers int) {
	cli := newClient(b, 0)
	kv := &countKV{KV: cli.KV}
	cli.KV = kv
	prefix := testPrefix(b)
	seedAccounts(b, cli, prefix+"d/", accounts)
	var transfer transferFunc
	switch impl {
	case "etcdkv", "etcdkv-pessimistic":
		db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		transfer = etcdkvTransfer(db, impl == "etcdkv-pessimistic")
	case "stm":
		transfer = stmTransfer(cli, prefix+"d/")
	}
	var attempts, next atomic.Int64
	kv.calls.Store(0)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(b.N)))
			for next.Add(1) <= int64(b.N) {
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				if err := transfer(bg, from, to, func() { attempts.Add(1) }); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(n/b.Elapsed().Seconds(), "txn/s")
	b.ReportMetric(float64(attempts.Load()-int64(b.N))/n, "aborts/commit")
	b.ReportMetric(float64(kv.calls.Load())/n, "roundtrips/txn")
}

func benchAcct(i int) string { return fmt.Sprintf("acct/%04d", i) }

// seedAccounts writes accounts balances of 1,000,000 under prefix, 100 per
// Txn.
func seedAccounts(b *testing.B, cli *clientv3.Client, prefix string, accounts int) {
	for lo := 0; lo < accounts; lo += 100 {
		var ops []clientv3.Op
		for i := lo; i < min(lo+100, accounts); i++ {
			ops = append(ops, clientv3.OpPut(prefix+benchAcct(i), "1000000"))
		}
		if _, err := cli.Txn(bg).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func etcdkvTransfer(db *txkv.DB, pessimistic bool) transferFunc {
	opts := &txkv.TxOptions{Strategy: txkv.Optimistic, Retry: &txkv.RetryPolicy{MaxAttempts: 1 << 20}}
	if pessimistic {
		opts.Strategy = txkv.Pessimistic
	}
	return func(ctx context.Context, a, b int, attempt func()) error {
		return db.Update(ctx, opts, func(tx *txkv.Tx) error {
			attempt()
			ka, kb := []byte(benchAcct(a)), []byte(benchAcct(b))
			if pessimistic {
				if err := tx.LockKeys(txkv.Exclusive, ka, kb); err != nil {
					return err
				}
			}
			va, err := tx.Get(ka)
			if err != nil {
				return err
			}
			vb, err := tx.Get(kb)
			if err != nil {
				return err
			}
			na, _ := strconv.Atoi(string(va))
			nb, _ := strconv.Atoi(string(vb))
			if err := tx.Put(ka, []byte(strconv.Itoa(na-1))); err != nil {
				return err
			}
			return tx.Put(kb, []byte(strconv.Itoa(nb+1)))
		})
	}
}

func stmTransfer(cli *clientv3.Client, prefix string) transferFunc {
	return func(ctx context.Context, a, b int, attempt func()) error {
		_, err := concurrency.NewSTM(cli, func(s concurrency.STM) error {
			attempt()
			ka, kb := prefix+benchAcct(a), prefix+benchAcct(b)
			na, _ := strconv.Atoi(s.Get(ka))
			nb, _ := strconv.Atoi(s.Get(kb))
			s.Put(ka, strconv.Itoa(na-1))
			s.Put(kb, strconv.Itoa(nb+1))
			return nil
		}, concurrency.WithIsolation(concurrency.Serializable), concurrency.WithAbortContext(ctx))
		return err
	}
}

// countKV counts a client's KV requests: each is one round trip.
type countKV struct {
	clientv3.KV
	calls atomic.Int64
}

func (c *countKV) Get(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	c.calls.Add(1)
	return c.KV.Get(ctx, key, opts...)
}

func (c *countKV) Put(ctx context.Context, key, val string, opts ...clientv3.OpOption) (*clientv3.PutResponse, error) {
	c.calls.Add(1)
	return c.KV.Put(ctx, key, val, opts...)
}

func (c *countKV) Delete(ctx context.Context, key string, opts ...clientv3.OpOption) (*clientv3.DeleteResponse, error) {
	c.calls.Add(1)
	return c.KV.Delete(ctx, key, opts...)
}

func (c *countKV) Do(ctx context.Context, op clientv3.Op) (clientv3.OpResponse, error) {
	c.calls.Add(1)
	return c.KV.Do(ctx, op)
}

// Txn counts when the Txn is built: each is committed once.
func (c *countKV) Txn(ctx context.Context) clientv3.Txn {
	c.calls.Add(1)
	return c.KV.Txn(ctx)
}
