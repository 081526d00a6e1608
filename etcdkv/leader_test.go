package etcdkv_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

// TestLeaderKill runs the bank on a cluster of its own (3 members, so the
// shared one is not disturbed), 4 workers each on a handle whose client
// knows every member, and kills the leader mid-run. Progress must resume;
// afterwards every acknowledged transfer is present, none that failed
// with a definite error is, and the balances are exactly what the
// transfers present make them: no ambiguous commit lost or doubled.
func TestLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	c, err := startMembers(t.TempDir(), 3)
	if err != nil {
		t.Fatalf("starting etcd: %v", err)
	}
	t.Cleanup(c.stop)
	b := newKillBank(t, c, 4, 10)
	b.run()
	b.waitAcked(t, 100, "warm-up")

	leader := c.leader()
	if leader < 0 {
		t.Fatal("no leader")
	}
	start := time.Now()
	before := b.acked.Load()
	var killed time.Duration
	done := make(chan struct{})
	go func() { // Close waits for the member's RPCs: meanwhile the others go on
		defer close(done)
		c.kill(leader)
		killed = time.Since(start)
	}()
	b.waitAcked(t, before+1, "after the kill")
	first := time.Since(start)
	b.waitAcked(t, before+100, "after the kill")
	<-done
	t.Logf("killed leader m%d (HardStop and Close took %v); first transfer acknowledged %v after the kill began, 100 after %v",
		leader, killed.Round(time.Millisecond), first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	b.stopAndCheck(t)
}

// killBank is the bank of TestLeaderKill. Each transfer moves an amount
// between two accounts and writes a marker x/<worker>/<seq> = from,to,amount
// in the same transaction, so the outcome of every transfer can be read
// back.
type killBank struct {
	t        *testing.T
	dbs      []*txkv.DB
	kvs      []*faultKV // counting resolutions only
	accounts int
	stop     chan struct{}
	wg       sync.WaitGroup
	acked    atomic.Int64

	mu      sync.Mutex
	outcome map[string]string // marker → "acked", "unknown", or the definite error
}

const killBankStart = 1000

func newKillBank(t *testing.T, c *cluster, workers, accounts int) *killBank {
	b := &killBank{t: t, accounts: accounts, stop: make(chan struct{}), outcome: map[string]string{}}
	prefix := testPrefix(t)
	for range workers {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		fk := &faultKV{KV: cli.KV}
		cli.KV = fk
		db, err := etcdkv.Open(cli, &etcdkv.Options{Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		b.dbs, b.kvs = append(b.dbs, db), append(b.kvs, fk)
	}
	for i := range accounts {
		if err := b.dbs[0].Put(bg, acctKey(i), []byte(strconv.Itoa(killBankStart))); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

func acctKey(i int) []byte { return fmt.Appendf(nil, "acct/%03d", i) }

func (b *killBank) run() {
	for w, db := range b.dbs {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			b.worker(w, db)
		}()
	}
}

func (b *killBank) worker(w int, db *txkv.DB) {
	rng := rand.New(rand.NewPCG(uint64(w), 16))
	retry := &txkv.RetryPolicy{MaxAttempts: 1000, BaseDelay: 100 * time.Microsecond, MaxDelay: 10 * time.Millisecond}
	for seq := 0; ; seq++ {
		select {
		case <-b.stop:
			return
		default:
		}
		from, to := rng.IntN(b.accounts), rng.IntN(b.accounts-1)
		if to >= from {
			to++
		}
		amount := 1 + rng.IntN(9)
		marker := fmt.Sprintf("x/%d/%06d", w, seq)
		err := db.Update(bg, &txkv.TxOptions{Retry: retry}, func(tx *txkv.Tx) error {
			if err := move(tx, from, -amount); err != nil {
				return err
			}
			if err := move(tx, to, amount); err != nil {
				return err
			}
			return tx.Put([]byte(marker), fmt.Appendf(nil, "%d,%d,%d", from, to, amount))
		})
		b.note(marker, err)
	}
}

// move adds delta to account i.
func move(tx *txkv.Tx, i, delta int) error {
	v, err := tx.Get(acctKey(i))
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return err
	}
	return tx.Put(acctKey(i), []byte(strconv.Itoa(n+delta)))
}

func (b *killBank) note(marker string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil:
		b.outcome[marker] = "acked"
		b.acked.Add(1)
	case errors.Is(err, txkv.ErrCommitUnknown):
		b.outcome[marker] = "unknown"
	default:
		b.outcome[marker] = err.Error()
	}
}

// waitAcked waits until n transfers were acknowledged, 30 s at most (a
// hang, not a slow machine).
func (b *killBank) waitAcked(t *testing.T, n int64, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for b.acked.Load() < n {
		if time.Now().After(deadline) {
			close(b.stop)
			b.wg.Wait()
			t.Fatalf("%s: %d transfers acknowledged after 30 s, want %d; outcomes: %v", what, b.acked.Load(), n, b.summary())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// summary counts the outcomes: acked, unknown, and each error.
func (b *killBank) summary() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := map[string]int{}
	for _, o := range b.outcome {
		m[o]++
	}
	return m
}

// stopAndCheck stops the workers and checks the bank at one revision.
func (b *killBank) stopAndCheck(t *testing.T) {
	t.Helper()
	close(b.stop)
	b.wg.Wait()
	balances := map[string]int{}
	markers := map[string]string{}
	err := b.dbs[0].View(bg, func(tx *txkv.Tx) error {
		if err := tx.Scan([]byte("acct/"), []byte("acct0"), func(k, v []byte) error {
			n, err := strconv.Atoi(string(v))
			balances[string(k)] = n
			return err
		}); err != nil {
			return err
		}
		return tx.Scan([]byte("x/"), []byte("x0"), func(k, v []byte) error {
			markers[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("final View: %v", err)
	}
	want := map[string]int{}
	for i := range b.accounts {
		want[string(acctKey(i))] = killBankStart
	}
	for _, v := range markers {
		var from, to, amount int
		if _, err := fmt.Sscanf(strings.ReplaceAll(v, ",", " "), "%d %d %d", &from, &to, &amount); err != nil {
			t.Fatalf("marker %q: %v", v, err)
		}
		want[string(acctKey(from))] -= amount
		want[string(acctKey(to))] += amount
	}
	total := 0
	for k, n := range balances {
		total += n
		if n != want[k] {
			t.Errorf("%s = %d, but the transfers present make it %d (a transfer lost or doubled)", k, n, want[k])
		}
	}
	if total != b.accounts*killBankStart {
		t.Errorf("total %d, want %d", total, b.accounts*killBankStart)
	}
	for m, o := range b.outcome {
		_, present := markers[m]
		switch {
		case o == "acked" && !present:
			t.Errorf("transfer %s was acknowledged but is absent", m)
		case o != "acked" && o != "unknown" && present:
			t.Errorf("transfer %s failed (%s) but is present", m, o)
		}
	}
	var resolutions int64
	for _, fk := range b.kvs {
		resolutions += fk.resolutions.Load()
	}
	t.Logf("%d transfers present; outcomes %v; %d resolutions of ambiguous commits", len(markers), b.summary(), resolutions)
}
