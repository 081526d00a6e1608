// Command bank runs concurrent bank transfers on txkv under each strategy
// and checks the invariant the decision guide's bank case demands: money is
// neither created nor destroyed, and no balance goes negative.
//
//	go run ./examples/bank [-accounts 10] [-workers 16] [-duration 2s] [-db path]
package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

const initialBalance = 1000

var errInsufficient = errors.New("insufficient funds")

func main() {
	accounts := flag.Int("accounts", 10, "number of accounts (fewer: more contention)")
	workers := flag.Int("workers", 16, "concurrent transfer goroutines")
	duration := flag.Duration("duration", 2*time.Second, "run time per strategy")
	dir := flag.String("dir", "", "directory for the database files (default: a temporary one)")
	flag.Parse()
	if err := run(*accounts, *workers, *duration, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

func run(accounts, workers int, d time.Duration, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "txkv-bank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	fmt.Printf("%-12s %12s %10s %10s %8s  %s\n", "strategy", "transfers/s", "retries", "aborts", "gave up", "invariant")
	for _, s := range strategies() {
		path := filepath.Join(dir, s.String()+".db")
		if err := runStrategy(path, s, accounts, workers, d); err != nil {
			return fmt.Errorf("%v: %w", s, err)
		}
	}
	return nil
}

func runStrategy(path string, s txkv.Strategy, accounts, workers int, d time.Duration) error {
	opts := txkv.DefaultOptions()
	opts.Strategy = s
	db, err := txkv.Open(path, opts)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx := context.Background()
	if err := seed(ctx, db, accounts); err != nil {
		return err
	}
	var done, gaveUp atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for time.Now().Before(deadline) {
				from, to := rng.IntN(accounts), rng.IntN(accounts-1)
				if to >= from {
					to++
				}
				err := transfer(ctx, db, from, to, int64(1+rng.IntN(50)))
				switch {
				case txkv.IsRetryable(err):
					gaveUp.Add(1) // Update ran out of attempts: the guide's "high retry rate"
				case err != nil && !errors.Is(err, errInsufficient):
					errs <- err
					return
				default:
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	verdict := check(ctx, db, accounts)
	st := db.Stats()
	fmt.Printf("%-12s %12.0f %10d %10d %8d  %s\n", s, float64(done.Load())/d.Seconds(), st.Retries, st.Aborts, gaveUp.Load(), verdict)
	if verdict != "ok" {
		return errors.New(verdict)
	}
	return nil
}

func key(i int) []byte { return fmt.Appendf(nil, "acct/%04d", i) }

func seed(ctx context.Context, db *txkv.DB, n int) error {
	return db.Update(ctx, nil, func(tx *txkv.Tx) error {
		for i := range n {
			if err := tx.Put(key(i), enc(initialBalance)); err != nil {
				return err
			}
		}
		return nil
	})
}

// transfer moves amount from one account to another: a read-modify-write of
// two keys, the guide's canonical high-conflict transaction.
func transfer(ctx context.Context, db *txkv.DB, from, to int, amount int64) error {
	return db.Update(ctx, nil, func(tx *txkv.Tx) error {
		a, err := tx.Get(key(from))
		if err != nil {
			return err
		}
		b, err := tx.Get(key(to))
		if err != nil {
			return err
		}
		if dec(a) < amount {
			return errInsufficient
		}
		if err := tx.Put(key(from), enc(dec(a)-amount)); err != nil {
			return err
		}
		return tx.Put(key(to), enc(dec(b)+amount))
	})
}

func check(ctx context.Context, db *txkv.DB, n int) string {
	var total int64
	verdict := "ok"
	err := db.View(ctx, func(tx *txkv.Tx) error {
		return tx.Scan([]byte("acct/"), []byte("acct0"), func(_, v []byte) error {
			if dec(v) < 0 {
				verdict = "negative balance"
			}
			total += dec(v)
			return nil
		})
	})
	switch {
	case err != nil:
		return err.Error()
	case total != int64(n)*initialBalance:
		return fmt.Sprintf("total %d, want %d", total, int64(n)*initialBalance)
	}
	return verdict
}

func enc(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }
func dec(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }

func strategies() []txkv.Strategy {
	if s := os.Getenv("BANK_STRATEGY"); s != "" {
		for _, st := range []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive} {
			if st.String() == s {
				return []txkv.Strategy{st}
			}
		}
	}
	return []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid}
}
