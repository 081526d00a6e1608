package conformance

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// Bank runs the bank on a fresh DB of the target with 10 and with 1,000
// accounts (BankOn).
func Bank(t *testing.T, tg Target) {
	for _, accounts := range []int{10, 1000} {
		t.Run(fmt.Sprintf("accounts=%d", accounts), func(t *testing.T) {
			BankOn(t, tg.Open(t), tg, accounts, tg.scaled(150))
		})
	}
}

// BankOn is the bank on db: atomic visibility under load. One writer per
// strategy of the target moves money between random accounts (transfers
// each); meanwhile every reader — View snapshots, and read-write
// transactions of every strategy scanning all accounts — sees the total
// conserved, and so does a final View.
func BankOn(t *testing.T, db *txkv.DB, tg Target, accounts, transfers int) {
	const start = 100
	for i := range accounts {
		MustPut(t, db, fmt.Sprintf("acct/%d", i), strconv.Itoa(start))
	}
	sum := func(tx *txkv.Tx) (int, error) {
		total := 0
		err := tx.Scan([]byte("acct/"), []byte("acct0"), func(_, v []byte) error {
			n, err := strconv.Atoi(string(v))
			total += n
			return err
		})
		return total, err
	}
	retry := &txkv.RetryPolicy{MaxAttempts: 10000, BaseDelay: 10 * time.Microsecond, MaxDelay: time.Millisecond}
	strategies := tg.strategies()
	stop := make(chan struct{})
	var writers, readers sync.WaitGroup
	for w, s := range strategies {
		writers.Add(1)
		go func() {
			defer writers.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range transfers {
				from, to := rng.IntN(accounts), rng.IntN(accounts)
				if from == to {
					continue
				}
				err := db.Update(bg, &txkv.TxOptions{Strategy: s, Retry: retry}, func(tx *txkv.Tx) error {
					// Pessimistic transfers in opposite directions deadlock
					// now and then; Update retries the victim.
					a, b := fmt.Sprintf("acct/%d", from), fmt.Sprintf("acct/%d", to)
					fb, err := tx.Get([]byte(a))
					if err != nil {
						return err
					}
					tb, err := tx.Get([]byte(b))
					if err != nil {
						return err
					}
					f, _ := strconv.Atoi(string(fb))
					g, _ := strconv.Atoi(string(tb))
					if err := tx.Put([]byte(a), []byte(strconv.Itoa(f-1))); err != nil {
						return err
					}
					return tx.Put([]byte(b), []byte(strconv.Itoa(g+1)))
				})
				if err != nil {
					t.Errorf("%v transfer: %v", s, err)
					return
				}
			}
		}()
	}
	check := func(who string, total int, err error) bool {
		if err != nil {
			t.Errorf("%s: %v", who, err)
			return false
		}
		if total != accounts*start {
			t.Errorf("%s saw a total of %d, want %d", who, total, accounts*start)
			return false
		}
		return true
	}
	readers.Add(1)
	go func() { // View snapshots
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var total int
			err := db.View(bg, func(tx *txkv.Tx) error { var err error; total, err = sum(tx); return err })
			if !check("View", total, err) {
				return
			}
		}
	}()
	readers.Add(1)
	go func() { // read-write transactions of each strategy, read-only in fact
		defer readers.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := strategies[i%len(strategies)]
			var total int
			err := db.Update(bg, &txkv.TxOptions{Strategy: s, Retry: retry}, func(tx *txkv.Tx) error {
				var err error
				total, err = sum(tx)
				return err
			})
			if !check(s.String()+" reader", total, err) {
				return
			}
		}
	}()
	writers.Wait()
	close(stop)
	readers.Wait()
	var total int
	if err := db.View(bg, func(tx *txkv.Tx) error { var err error; total, err = sum(tx); return err }); err != nil || total != accounts*start {
		t.Fatalf("final total %d, %v", total, err)
	}
}
