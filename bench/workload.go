package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/txkv/txkv"
)

// ErrRejected is what an operation returns when the business rule said no:
// the account lacks funds, the seat is taken, the product is sold out, the
// queue is empty. The transaction rolled back having changed nothing; the
// driver counts the operation as completed (the system answered correctly),
// not as failed.
var ErrRejected = errors.New("txkv: bench: rejected by the business rule")

// ErrInvariant is wrapped by every Check failure, so a caller can tell a
// broken invariant from an I/O error with errors.Is.
var ErrInvariant = errors.New("txkv: bench: invariant violated")

// NoThink, as Config.Think, means no think time at all (zero means the
// workload's default).
const NoThink time.Duration = -1

// Config are the two knobs every workload takes.
type Config struct {
	// HotSet is the contention knob: how many items (accounts, products,
	// seats, posts, patients, articles, playlists) the operations spread
	// over. Fewer items, more contention. 0: the workload's default.
	HotSet int
	// Think is the work done inside a transaction between its reads and
	// its writes (for collaborative editing: the user composing an edit
	// between fetching the playlist and submitting it). It is a sleep: it
	// models waiting on the application, the network or a human, which is
	// what makes a transaction long. 0: the workload's default; NoThink:
	// none.
	Think time.Duration
}

// Spec describes one workload of the decision guide.
type Spec struct {
	Name    string // short name used on the command line and in benchmark names
	Title   string
	Summary string // what it models and what its invariant is
	// Profile is the workload as the guide's six questions describe it;
	// Advise(Profile) is the guide's recommendation.
	Profile Profile
	// HotSet is the default contention knob and Sweep the values the
	// runner tries, from most to least contended.
	HotSet int
	Sweep  []int
	Think  time.Duration // default think time
	// Recipe says how the workload's transactions are written under each
	// strategy: the way the guide tells users to write them (§4, §7).
	Recipe string
	// OrderedLocks says the pessimistic recipe takes every lock it waits
	// for in one canonical order (LockKeys, guide §4), so under Pessimistic
	// a deadlock cannot happen: if one does, it is a bug (DeadlockFree).
	OrderedLocks bool
	// New builds a fresh instance; each run needs its own.
	New func(cfg Config) Instance
}

// DeadlockFree reports whether the workload's recipe under st promises no
// deadlocks. Only Pessimistic does: the optimistic strategies take their
// locks where the engine decides (at commit, on a retry, on a hot key), and
// the guide promises nothing about their order.
func (s Spec) DeadlockFree(st txkv.Strategy) bool {
	return s.OrderedLocks && st == txkv.Pessimistic
}

// Instance is one run of a workload against one database.
type Instance interface {
	// Setup loads the initial data.
	Setup(ctx context.Context, db *txkv.DB) error
	// Op runs one business transaction through db.Update with opts (which
	// carries the strategy under test). It returns nil when the
	// transaction committed, ErrRejected when the business rule refused
	// it, and the Update error otherwise.
	Op(ctx context.Context, db *txkv.DB, opts *txkv.TxOptions, w *Worker) error
	// Check verifies the workload's invariant after the run; a violation
	// wraps ErrInvariant.
	Check(ctx context.Context, db *txkv.DB) error
}

// Counters is implemented by instances that count workload-specific events
// (version mismatches transformed, empty queue polls, ...).
type Counters interface {
	Counters() map[string]uint64
}

// Worker is one driver goroutine's private state.
type Worker struct {
	ID   int
	Rand *rand.Rand
	seq  uint64
	// readOnly is set by an operation that only reads (readsOnly), so the
	// driver reports its latency apart from the writing operations', whose
	// commits wait for the log: a mix of both has a meaningless median.
	readOnly bool
}

// readsOnly marks the current operation as read-only.
func (w *Worker) readsOnly() { w.readOnly = true }

// NewWorker returns a worker with a deterministic random stream.
func NewWorker(id int, seed uint64) *Worker {
	return &Worker{ID: id, Rand: rand.New(rand.NewPCG(seed, uint64(id)+1))}
}

// NextID returns an identifier unique within the run (worker, sequence), for
// record keys written by this worker.
func (w *Worker) NextID() string {
	w.seq++
	return fmt.Sprintf("%03d-%010d", w.ID, w.seq)
}

// pick returns a random index in [0, n).
func (w *Worker) pick(n int) int { return w.Rand.IntN(n) }

// oneIn reports true with probability 1/n.
func (w *Worker) oneIn(n int) bool { return w.Rand.IntN(n) == 0 }

func (c Config) hotSet(def int) int {
	if c.HotSet > 0 {
		return c.HotSet
	}
	return def
}

func (c Config) think(def time.Duration) time.Duration {
	switch {
	case c.Think < 0:
		return 0
	case c.Think == 0:
		return def
	}
	return c.Think
}

// think waits d: the application working while the transaction is open.
func think(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// Workloads returns the eight workloads of the decision guide, in the
// guide's order.
func Workloads() []Spec {
	return []Spec{
		bankSpec(), inventorySpec(), ticketSpec(), likesSpec(),
		medicalSpec(), contentSpec(), flashSaleSpec(), collabSpec(),
	}
}

// Lookup finds a workload by name: one of Workloads, or the hot counter
// (CounterSpec).
func Lookup(name string) (Spec, error) {
	for _, s := range append(Workloads(), CounterSpec()) {
		if s.Name == name {
			return s, nil
		}
	}
	return Spec{}, fmt.Errorf("txkv: bench: unknown workload %q (have %s)", name, strings.Join(Names(), ", "))
}

// Names lists the workload names.
func Names() []string {
	var out []string
	for _, s := range Workloads() {
		out = append(out, s.Name)
	}
	return out
}

// Strategies are the four strategies under test.
func Strategies() []txkv.Strategy {
	return []txkv.Strategy{txkv.Pessimistic, txkv.Optimistic, txkv.Hybrid, txkv.Adaptive}
}

// ParseStrategy maps "pessimistic", "optimistic", "hybrid" or "adaptive"
// to the strategy.
func ParseStrategy(name string) (txkv.Strategy, error) {
	i := slices.IndexFunc(Strategies(), func(s txkv.Strategy) bool { return s.String() == name })
	if i < 0 {
		return 0, fmt.Errorf("txkv: bench: unknown strategy %q", name)
	}
	return Strategies()[i], nil
}

// --- the guide's recipes ---

// lockForWrite is the guide's deadlock prevention (§4, and the bank recipe of
// §7): a pessimistic transaction locks the rows it will write exclusively,
// in canonical order, before it reads them — so two transactions never both
// hold S and upgrade, and never take two locks in opposite orders. Under
// the other strategies it does nothing: explicit locks are real locks under
// every strategy, and the guide's optimistic, hybrid and adaptive recipes
// read plainly and leave locking to validation, the retry or the key's
// temperature.
func lockForWrite(tx *txkv.Tx, st txkv.Strategy, keys ...[]byte) error {
	return lockOrdered(tx, st, txkv.Exclusive, keys)
}

// lockForRead takes shared locks on keys a pessimistic transaction will
// read, in canonical order: plain Gets in a random order would take the
// same S locks, but queued writers (FIFO) could close a cycle between two
// readers that took them in opposite orders.
func lockForRead(tx *txkv.Tx, st txkv.Strategy, keys ...[]byte) error {
	return lockOrdered(tx, st, txkv.Shared, keys)
}

func lockOrdered(tx *txkv.Tx, st txkv.Strategy, mode txkv.LockMode, keys [][]byte) error {
	if st != txkv.Pessimistic {
		return nil
	}
	return tx.LockKeys(mode, keys...)
}

// --- value and key encoding shared by the workloads ---

func enc(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func dec(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("txkv: bench: value of %d bytes, want an 8-byte integer", len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// getInt reads an integer under the transaction's strategy.
func getInt(tx *txkv.Tx, key []byte) (int64, error) {
	v, err := tx.Get(key)
	if err != nil {
		return 0, err
	}
	return dec(v)
}

func key(format string, args ...any) []byte { return fmt.Appendf(nil, format, args...) }

// prefixEnd is the exclusive end of the range of keys starting with p.
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// scanPrefix calls fn for every key with prefix p.
func scanPrefix(tx *txkv.Tx, p string, fn func(k, v []byte) error) error {
	return tx.Scan([]byte(p), prefixEnd([]byte(p)), fn)
}

// load writes the initial data in batches of one transaction each.
func load(ctx context.Context, db *txkv.DB, n int, kv func(i int) (k, v []byte)) error {
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		err := db.Update(ctx, nil, func(tx *txkv.Tx) error {
			for i := lo; i < min(lo+batch, n); i++ {
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

func violation(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvariant, fmt.Sprintf(format, args...))
}
