package peers

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/txkv/txkv"
)

// Row is one line of the comparison table.
type Row struct {
	Name     string
	Workers  int
	Workload func() Workload
}

// Rows are the rows: the bank with 10 and 10,000 accounts,
// inventory, the job queue, single-key commits with 1 and 64 committers, the
// hot counter with 2, 8 and 64 writers, and point reads (8 readers, one
// read-only transaction per read, 100,000 keys).
func Rows(workers int) []Row {
	return []Row{
		{"bank, 10 accounts", workers, func() Workload { return Bank(10) }},
		{"bank, 10000 accounts", workers, func() Workload { return Bank(10000) }},
		{"inventory, 1000 products", workers, func() Workload { return Inventory(1000) }},
		{"job queue", workers, Queue},
		{"single-key commit, 1 committer", 1, Single},
		{"single-key commit, 64 committers", 64, Single},
		{"hot counter, 2 writers", 2, Counter},
		{"hot counter, 8 writers", 8, Counter},
		{"hot counter, 64 writers", 64, Counter},
		{"point reads, 100000 keys", 8, func() Workload { return Reads(100000) }},
	}
}

// Contender is one store (or one txkv strategy) in the comparison.
type Contender struct {
	Name string
	Txkv bool // one of txkv's strategies: the best of them is compared
	Open func(dir string, durable bool) (Store, error)
	// Bank, if set, marks an in-memory ceiling: it runs only the bank
	// rows, without durability, with this workload instead.
	Bank func(n int) Workload
}

// Contenders lists txkv under the given strategies, the peers and the
// ceilings.
func Contenders(strategies []txkv.Strategy) []Contender {
	var cs []Contender
	for _, st := range strategies {
		cs = append(cs, Contender{Name: "txkv " + st.String(), Txkv: true,
			Open: func(dir string, d bool) (Store, error) { return OpenTxkv(dir, d, st) }})
	}
	return append(cs,
		Contender{Name: "bbolt", Open: func(dir string, d bool) (Store, error) { return OpenBolt(dir, d, false) }},
		Contender{Name: "bbolt Batch", Open: func(dir string, d bool) (Store, error) { return OpenBolt(dir, d, true) }},
		Contender{Name: "badger", Open: OpenBadger},
		Contender{Name: "buntdb", Open: OpenBunt},
		Contender{Name: "sqlite", Open: OpenSQLite},
		Contender{Name: "map+mutex", Open: func(string, bool) (Store, error) { return OpenMap(), nil },
			Bank: Bank},
		Contender{Name: "account mutexes", Open: func(string, bool) (Store, error) { return OpenMap(), nil },
			Bank: BankMutexes},
	)
}

// runs reports whether c takes part in row (ceilings: bank rows, no fsync).
func (c Contender) runs(row Row, durable bool) bool {
	return c.Bank == nil || (!durable && strings.HasPrefix(row.Name, "bank"))
}

func (c Contender) workload(row Row) Workload {
	if c.Bank != nil {
		n := 10
		if strings.Contains(row.Name, "10000") {
			n = 10000
		}
		return c.Bank(n)
	}
	return row.Workload()
}

// Sample is one measurement.
type Sample struct {
	Ops       uint64
	Elapsed   time.Duration
	Aborts    uint64 // for stores that count them (txkv, badger)
	Deadlocks uint64 // for stores that count them (txkv)
	// RecordsPerBatch is the mean group-commit batch of the run (txkv on a file; else 0).
	RecordsPerBatch float64
	Throughput      float64
}

// Measure runs one contender on one row for d in a fresh temporary
// directory, then checks the row's invariant.
func Measure(c Contender, row Row, durable bool, d time.Duration, seed uint64) (Sample, error) {
	dir, err := os.MkdirTemp("", "txkvpeers-")
	if err != nil {
		return Sample{}, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	s, err := c.Open(dir, durable)
	if err != nil {
		return Sample{}, err
	}
	smp, err := drive(s, c.workload(row), row.Workers, d, seed)
	if cerr := s.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return smp, err
}

type aborter interface{ Aborts() uint64 }

type deadlocker interface{ Deadlocks() uint64 }

// batcher is a store with a group-commit log (txkv): batches and records written so far.
type batcher interface {
	LogBatches() (batches, records uint64)
}

// logBatches reads a batcher's counters (zero for other stores).
func logBatches(s Store) (batches, records uint64) {
	if b, ok := s.(batcher); ok {
		return b.LogBatches()
	}
	return 0, 0
}

// counts reads the abort and deadlock counters of stores that keep them.
func counts(s Store) (aborts, deadlocks uint64) {
	if ab, ok := s.(aborter); ok {
		aborts = ab.Aborts()
	}
	if dl, ok := s.(deadlocker); ok {
		deadlocks = dl.Deadlocks()
	}
	return aborts, deadlocks
}

func drive(s Store, w Workload, workers int, d time.Duration, seed uint64) (Sample, error) {
	if err := w.Setup(s); err != nil {
		return Sample{}, fmt.Errorf("setup: %w", err)
	}
	a0, d0 := counts(s)
	b0, r0 := logBatches(s)
	var ops atomic.Uint64
	var firstErr atomic.Pointer[error]
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(seed, uint64(i)))
			for seq := uint64(1); time.Now().Before(deadline) && firstErr.Load() == nil; seq++ {
				if err := w.Op(s, r, i, seq); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return Sample{}, *p
	}
	smp := Sample{Ops: ops.Load(), Elapsed: el, Throughput: float64(ops.Load()) / el.Seconds()}
	a1, d1 := counts(s)
	smp.Aborts, smp.Deadlocks = a1-a0, d1-d0
	if b1, r1 := logBatches(s); b1 > b0 {
		smp.RecordsPerBatch = float64(r1-r0) / float64(b1-b0)
	}
	if err := w.Check(s); err != nil {
		return smp, fmt.Errorf("%w: %w", ErrInvariant, err)
	}
	return smp, nil
}

// Cell is the median of one contender's repetitions on one row.
type Cell struct {
	Row, Contender string
	Durable        bool
	Throughput     float64 // median ops/s
	AbortsPerOp    float64 // median
	DeadlocksPerOp float64 // median
	Samples        []float64
	Err            string
}

// Config says what Compare runs.
type Config struct {
	Durable  []bool
	Reps     int
	Duration time.Duration
	Workers  int
	Seed     uint64
	Rows     []Row             // nil: Rows(Workers)
	Only     func(string) bool // contender filter; nil: all
	Progress func(done, total int, what string)
}

// Compare measures every contender on every row, interleaved: repetition
// by repetition, each contender once (A B C A B C …), so drift in the
// machine (thermal, page cache, other tenants) spreads over all of them.
func Compare(cs []Contender, cfg Config) []Cell {
	rows := cfg.Rows
	if rows == nil {
		rows = Rows(cfg.Workers)
	}
	type id struct {
		row, c  int
		durable bool
	}
	samples := map[id][]Sample{}
	errs := map[id]error{}
	total, done := 0, 0
	for _, dur := range cfg.Durable {
		for _, row := range rows {
			for _, c := range cs {
				if c.runs(row, dur) {
					total += cfg.Reps
				}
			}
		}
	}
	var out []Cell
	for _, dur := range cfg.Durable {
		for ri, row := range rows {
			for rep := range cfg.Reps {
				for ci, c := range cs {
					k := id{ri, ci, dur}
					if !c.runs(row, dur) || errs[k] != nil {
						continue
					}
					smp, err := Measure(c, row, dur, cfg.Duration, cfg.Seed+uint64(rep))
					if err != nil {
						errs[k] = err
					} else {
						samples[k] = append(samples[k], smp)
					}
					done++
					if cfg.Progress != nil {
						cfg.Progress(done, total, fmt.Sprintf("%s / %s", row.Name, c.Name))
					}
				}
			}
			for ci, c := range cs {
				k := id{ri, ci, dur}
				if !c.runs(row, dur) {
					continue
				}
				cell := Cell{Row: row.Name, Contender: c.Name, Durable: dur}
				if errs[k] != nil {
					cell.Err = errs[k].Error()
				}
				var tp, ab, dl []float64
				for _, s := range samples[k] {
					tp = append(tp, s.Throughput)
					ab = append(ab, float64(s.Aborts)/float64(max(s.Ops, 1)))
					dl = append(dl, float64(s.Deadlocks)/float64(max(s.Ops, 1)))
				}
				cell.Samples, cell.Throughput, cell.AbortsPerOp = tp, median(tp), median(ab)
				cell.DeadlocksPerOp = median(dl)
				out = append(out, cell)
			}
		}
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ErrInvariant marks cells whose invariant check failed.
var ErrInvariant = errors.New("txkv: peers: invariant violated")
