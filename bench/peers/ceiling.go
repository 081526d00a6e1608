package peers

import (
	"fmt"
	"math/rand/v2"
	"sync"
)

// The in-memory ceilings: what the bank transfer costs with no store at
// all, to show how far every store (txkv included) is from the hardware.

// mapStore is a Go map under one mutex: Update holds the mutex for the
// whole transaction (BuntDB's design without the file). Writes go straight
// to the map, so it offers no rollback: only for workloads that refuse
// before they write (the bank).
type mapStore struct {
	mu struct {
		sync.Mutex // protects m; held for a whole transaction
		m          map[string][]byte
	}
}

// OpenMap returns the one-mutex map ceiling.
func OpenMap() Store {
	s := &mapStore{}
	s.mu.m = map[string][]byte{}
	return s
}

func (s *mapStore) Update(fn func(Tx) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fn(mapTx{s.mu.m})
}

func (s *mapStore) View(fn func(Tx) error) error { return s.Update(fn) }

func (s *mapStore) Close() error { return nil }

type mapTx struct{ m map[string][]byte }

func (t mapTx) Get(k []byte) ([]byte, bool, error) {
	v, ok := t.m[string(k)]
	return v, ok, nil
}

func (t mapTx) Put(k, v []byte) error { t.m[string(k)] = v; return nil }

func (t mapTx) Delete(k []byte) error { delete(t.m, string(k)); return nil }

func (t mapTx) Claim([]byte) ([]byte, []byte, bool, error) {
	return nil, nil, false, fmt.Errorf("txkv: peers: the map ceiling has no order")
}

func (t mapTx) Scan(prefix []byte, fn func(k, v []byte) error) error {
	return fmt.Errorf("txkv: peers: the map ceiling has no order")
}

// BankMutexes is the bank on a slice of balances with one mutex per
// account, taken in index order (so transfers never deadlock): the most
// parallel a transfer can be.
func BankMutexes(n int) Workload {
	type account struct {
		sync.Mutex // protects bal
		bal        int64
	}
	accts := make([]account, n)
	return Workload{
		Name: fmt.Sprintf("bank-%d", n),
		Setup: func(Store) error {
			for i := range accts {
				accts[i].bal = bankInitial
			}
			return nil
		},
		Op: func(_ Store, r *rand.Rand, _ int, _ uint64) error {
			from, to := r.IntN(n), r.IntN(n-1)
			if to >= from {
				to++
			}
			amount := int64(1 + r.IntN(100))
			a, b := &accts[min(from, to)], &accts[max(from, to)]
			a.Lock()
			b.Lock()
			if accts[from].bal >= amount {
				accts[from].bal -= amount
				accts[to].bal += amount
			}
			b.Unlock()
			a.Unlock()
			return nil
		},
		Check: func(Store) error {
			var total int64
			for i := range accts {
				if accts[i].bal < 0 {
					return fmt.Errorf("bank: account %d negative", i)
				}
				total += accts[i].bal
			}
			if total != int64(n)*bankInitial {
				return fmt.Errorf("bank: total %d, want %d", total, int64(n)*bankInitial)
			}
			return nil
		},
	}
}
