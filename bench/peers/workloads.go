package peers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
)

// Workload is one row of the comparison: Setup, an operation (one
// transaction) and an invariant check, written once against Store.
type Workload struct {
	Name  string
	Setup func(s Store) error
	Op    func(s Store, w *rand.Rand, worker int, seq uint64) error
	Check func(s Store) error
}

const (
	bankInitial = 1000
	invStock    = 1 << 40 // never runs out: the row measures the write path
)

// Bank moves 1..100 between two of n accounts; the total is conserved.
func Bank(n int) Workload {
	acct := func(i int) []byte { return key("bank/%06d", i) }
	return Workload{
		Name: fmt.Sprintf("bank-%d", n),
		Setup: func(s Store) error {
			return load(s, n, func(i int) ([]byte, []byte) { return acct(i), enc(bankInitial) })
		},
		Op: func(s Store, r *rand.Rand, _ int, _ uint64) error {
			from, to := r.IntN(n), r.IntN(n-1)
			if to >= from {
				to++
			}
			amount := int64(1 + r.IntN(100))
			err := s.Update(func(tx Tx) error {
				fb, err := getInt(tx, acct(from))
				if err != nil {
					return err
				}
				tb, err := getInt(tx, acct(to))
				if err != nil {
					return err
				}
				if fb < amount {
					return errRefused
				}
				if err := tx.Put(acct(from), enc(fb-amount)); err != nil {
					return err
				}
				return tx.Put(acct(to), enc(tb+amount))
			})
			if errors.Is(err, errRefused) {
				return nil
			}
			return err
		},
		Check: func(s Store) error {
			return s.View(func(tx Tx) error {
				var total int64
				for i := range n {
					b, err := getInt(tx, acct(i))
					if err != nil {
						return err
					}
					if b < 0 {
						return fmt.Errorf("bank: account %d negative: %d", i, b)
					}
					total += b
				}
				if total != int64(n)*bankInitial {
					return fmt.Errorf("bank: total %d, want %d", total, int64(n)*bankInitial)
				}
				return nil
			})
		},
	}
}

// Inventory: ten reads of three products per purchase of 1..3 units of one
// of n products, which writes the stock and an order record.
// Invariant: stock + units ordered = initial stock.
func Inventory(n int) Workload {
	stock := func(i int) []byte { return key("inv/stock/%06d", i) }
	return Workload{
		Name: fmt.Sprintf("inventory-%d", n),
		Setup: func(s Store) error {
			return load(s, n, func(i int) ([]byte, []byte) { return stock(i), enc(invStock) })
		},
		Op: func(s Store, r *rand.Rand, worker int, seq uint64) error {
			if r.IntN(11) != 0 {
				a, b, c := r.IntN(n), r.IntN(n), r.IntN(n)
				return s.View(func(tx Tx) error {
					for _, p := range []int{a, b, c} {
						if _, err := getInt(tx, stock(p)); err != nil {
							return err
						}
					}
					return nil
				})
			}
			p, qty := r.IntN(n), int64(1+r.IntN(3))
			return s.Update(func(tx Tx) error {
				st, err := getInt(tx, stock(p))
				if err != nil {
					return err
				}
				if err := tx.Put(stock(p), enc(st-qty)); err != nil {
					return err
				}
				return tx.Put(key("inv/order/%06d/%03d-%010d", p, worker, seq), enc(qty))
			})
		},
		Check: func(s Store) error {
			return s.View(func(tx Tx) error {
				for p := range n {
					st, err := getInt(tx, stock(p))
					if err != nil {
						return err
					}
					var sold int64
					if err := scanSum(tx, key("inv/order/%06d/", p), &sold); err != nil {
						return err
					}
					if st+sold != invStock {
						return fmt.Errorf("inventory: product %d stock %d + sold %d != %d", p, st, sold, invStock)
					}
				}
				return nil
			})
		},
	}
}

// Queue: a third of the operations enqueue a job, two thirds claim the
// oldest unclaimed job, delete it and record it done. Invariant: every
// enqueued job is queued or done, none done twice.
func Queue() Workload {
	var enqueued, twice atomic.Int64
	var next atomic.Uint64
	return Workload{
		Name:  "queue",
		Setup: func(Store) error { enqueued.Store(0); twice.Store(0); next.Store(0); return nil },
		Op: func(s Store, r *rand.Rand, _ int, _ uint64) error {
			if r.IntN(3) == 0 {
				id := next.Add(1)
				err := s.Update(func(tx Tx) error { return tx.Put(key("q/job/%012d", id), enc(int64(id))) })
				if err == nil {
					enqueued.Add(1)
				}
				return err
			}
			err := s.Update(func(tx Tx) error {
				k, v, ok, err := tx.Claim([]byte("q/job/"))
				if err != nil || !ok {
					return err
				}
				done := key("q/done/%012d", dec(v))
				if _, was, err := tx.Get(done); err != nil {
					return err
				} else if was {
					twice.Add(1)
				}
				if err := tx.Delete(k); err != nil {
					return err
				}
				return tx.Put(done, []byte{1})
			})
			return err
		},
		Check: func(s Store) error {
			return s.View(func(tx Tx) error {
				q, err := count(tx, []byte("q/job/"))
				if err != nil {
					return err
				}
				d, err := count(tx, []byte("q/done/"))
				if err != nil {
					return err
				}
				if int64(q+d) != enqueued.Load() || twice.Load() != 0 {
					return fmt.Errorf("queue: %d queued + %d done != %d enqueued (%d twice)", q, d, enqueued.Load(), twice.Load())
				}
				return nil
			})
		},
	}
}

// Single: each operation commits one new key in its own transaction — the
// durable single-key commit, where group commit decides the rate.
func Single() Workload {
	var acked atomic.Int64
	return Workload{
		Name:  "single",
		Setup: func(Store) error { acked.Store(0); return nil },
		Op: func(s Store, _ *rand.Rand, worker int, seq uint64) error {
			err := s.Update(func(tx Tx) error { return tx.Put(key("one/%03d-%010d", worker, seq), []byte("value-0123456789")) })
			if err == nil {
				acked.Add(1)
			}
			return err
		},
		Check: func(s Store) error {
			return s.View(func(tx Tx) error {
				n, err := count(tx, []byte("one/"))
				if err == nil && int64(n) != acked.Load() {
					err = fmt.Errorf("single: %d keys, %d acknowledged", n, acked.Load())
				}
				return err
			})
		},
	}
}

// Reads: each operation reads one random key of n in its own read-only transaction (View,
// then Get) — the point-read path, where the engine's per-transaction overhead shows. The
// values never change; Check reads them all back.
func Reads(n int) Workload {
	k := func(i int) []byte { return key("read/%07d", i) }
	return Workload{
		Name: fmt.Sprintf("reads-%d", n),
		Setup: func(s Store) error {
			return load(s, n, func(i int) ([]byte, []byte) { return k(i), enc(int64(i)) })
		},
		Op: func(s Store, r *rand.Rand, _ int, _ uint64) error {
			i := r.IntN(n)
			return s.View(func(tx Tx) error {
				v, err := getInt(tx, k(i))
				if err == nil && v != int64(i) {
					err = fmt.Errorf("reads: key %d holds %d", i, v)
				}
				return err
			})
		},
		Check: func(s Store) error {
			return s.View(func(tx Tx) error {
				for i := range n {
					if v, err := getInt(tx, k(i)); err != nil || v != int64(i) {
						return fmt.Errorf("reads: key %d: %d, %v", i, v, err)
					}
				}
				return nil
			})
		},
	}
}

// Counter: every worker increments one hot counter by reading it and writing it back (plain
// Get, then Put, in one transaction) — the read-modify-write a new user writes first. The
// counter equals the acknowledged increments. On txkv it shows that Update does not fail and
// that no strategy turns the read-then-write into deadlocks.
func Counter() Workload {
	var acked atomic.Int64
	k := []byte("counter/hot")
	return Workload{
		Name: "counter",
		Setup: func(s Store) error {
			acked.Store(0)
			return s.Update(func(tx Tx) error { return tx.Put(k, enc(0)) })
		},
		Op: func(s Store, _ *rand.Rand, _ int, _ uint64) error {
			err := s.Update(func(tx Tx) error {
				n, err := getInt(tx, k)
				if err != nil {
					return err
				}
				return tx.Put(k, enc(n+1))
			})
			if err == nil {
				acked.Add(1)
			}
			return err
		},
		Check: func(s Store) error {
			return s.View(func(tx Tx) error {
				n, err := getInt(tx, k)
				if err == nil && n != acked.Load() {
					err = fmt.Errorf("counter: %d, %d increments acknowledged", n, acked.Load())
				}
				return err
			})
		},
	}
}

func load(s Store, n int, kv func(i int) ([]byte, []byte)) error {
	for lo := 0; lo < n; lo += 1000 {
		err := s.Update(func(tx Tx) error {
			for i := lo; i < min(lo+1000, n); i++ {
				k, v := kv(i)
				if err := tx.Put(k, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func scanSum(tx Tx, prefix []byte, sum *int64) error {
	return tx.Scan(prefix, func(_, v []byte) error { *sum += dec(v); return nil })
}
