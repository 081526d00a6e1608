package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/reliability/elle"
)

// The list-append workload against txkv. Each key holds a list of unique
// ints, encoded as "1,2,3"; an append is Get + Put of the whole list, run
// through the transaction's strategy like any other read-modify-write.
// Every attempt Update makes is recorded as its own transaction (failed
// attempts Aborted, with fresh values), so a leaked aborted write is a G1a.

const workers = 16

// keyspace hands out key names and unique values. A slot's key is retired
// after maxWrites appends and replaced by a fresh one (Elle's key rotation),
// so lists stay short and the checker sees many independent orders.
type keyspace struct {
	maxWrites int
	// mu protects the fields of the struct below.
	mu struct {
		sync.Mutex
		gen  []int          // slot -> current generation
		next map[string]int // key -> last value handed out
	}
}

func newKeyspace(slots, maxWrites int) *keyspace {
	ks := &keyspace{maxWrites: maxWrites}
	ks.mu.gen = make([]int, slots)
	ks.mu.next = make(map[string]int)
	return ks
}

func (ks *keyspace) key(slot int) string {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return "s" + strconv.Itoa(slot) + "g" + strconv.Itoa(ks.mu.gen[slot])
}

// value returns a fresh value for key, rotating slot once the key is full.
func (ks *keyspace) value(slot int, key string) int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.mu.next[key]++
	v := ks.mu.next[key]
	if v >= ks.maxWrites && key == "s"+strconv.Itoa(slot)+"g"+strconv.Itoa(ks.mu.gen[slot]) {
		ks.mu.gen[slot]++
	}
	return v
}

// microOp is a planned micro-operation: the key is fixed when the
// transaction is planned, the value at each attempt.
type microOp struct {
	append bool
	slot   int
	key    string
}

// workload plans one transaction's micro-operations.
type workload func(r *rand.Rand, ks *keyspace) []microOp

// listAppend: 1-4 random reads and appends over 16 slots.
func listAppend(r *rand.Rand, ks *keyspace) []microOp {
	ops := make([]microOp, 1+r.IntN(4))
	for i := range ops {
		s := r.IntN(16)
		ops[i] = microOp{append: r.IntN(2) == 0, slot: s, key: ks.key(s)}
	}
	return ops
}

// writeSkew: read both keys of one of 4 pairs, then (usually) append to one
// of them — the doctors-on-call pattern that snapshot isolation admits.
func writeSkew(r *rand.Rand, ks *keyspace) []microOp {
	p := r.IntN(4)
	x, y := 2*p, 2*p+1
	ops := []microOp{{slot: x, key: ks.key(x)}, {slot: y, key: ks.key(y)}}
	if r.IntN(5) != 0 {
		w := ops[r.IntN(2)]
		w.append = true
		ops = append(ops, w)
	}
	return ops
}

// runConfig is one run of a workload against one DB.
type runConfig struct {
	strategy   txkv.Strategy   // StrategyDefault: a random one of strategies per transaction
	strategies []txkv.Strategy // the target's
	isolation  txkv.Isolation
	work       workload
	slots      int
	txns       int
	seed       uint64
}

// outcomes counts how the logical transactions and their attempts ended.
type outcomes struct {
	mu       sync.Mutex
	byReason map[string]int
}

func (o *outcomes) add(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.byReason[reason]++
}

func (o *outcomes) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for k, v := range o.byReason {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func reason(err error) string {
	switch {
	case err == nil:
		return "committed"
	case errors.Is(err, txkv.ErrConflict):
		return "conflict"
	case errors.Is(err, txkv.ErrDeadlock):
		return "deadlock"
	case errors.Is(err, txkv.ErrLockTimeout):
		return "timeout"
	}
	return "other"
}

// clock orders the starts and ends of transactions for the real-time check.
var clock atomic.Int64

// run executes cfg.txns logical transactions from 16 workers and returns
// the recorded history.
func elleRun(t *testing.T, db *txkv.DB, cfg runConfig) []elle.Txn {
	t.Helper()
	ks := newKeyspace(cfg.slots, 32)
	var rec elle.Recorder
	out := &outcomes{byReason: make(map[string]int)}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(cfg.seed, uint64(w)))
			for i := w; i < cfg.txns; i += workers {
				if err := runOne(db, cfg, r, ks, &rec, out); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h := rec.History()
	t.Logf("%d logical transactions, %d attempts; outcomes (attempts): %v", cfg.txns, len(h), out)
	return h
}

// runOne plans and runs one logical transaction. An error return means the
// test itself is broken (a value txkv returned does not decode).
func runOne(db *txkv.DB, cfg runConfig, r *rand.Rand, ks *keyspace, rec *elle.Recorder, out *outcomes) error {
	plan := cfg.work(r, ks)
	strategy := cfg.strategy
	if strategy == txkv.StrategyDefault {
		strategy = cfg.strategies[r.IntN(len(cfg.strategies))]
	}
	readOnly := true
	for _, op := range plan {
		readOnly = readOnly && !op.append
	}
	var cur *elle.Txn
	var garbage error
	attempt := func(tx *txkv.Tx) error {
		if cur != nil { // Update is retrying: the previous attempt failed
			cur.Status = elle.Aborted
			cur.Start = 0 // unknown, and irrelevant for an aborted attempt
			rec.Add(*cur)
			out.add("retried")
		}
		cur = &elle.Txn{ID: rec.NextID()}
		for _, op := range plan {
			runtime.Gosched() // let transactions interleave, even at GOMAXPROCS=1
			b, err := tx.Get([]byte(op.key))
			if err != nil && !errors.Is(err, txkv.ErrNotFound) {
				return err
			}
			if !op.append {
				list, err := elle.DecodeList(b)
				if err != nil {
					garbage = fmt.Errorf("key %s holds %q: %w", op.key, b, err)
					return garbage
				}
				cur.Ops = append(cur.Ops, elle.R(op.key, list...))
				continue
			}
			v := ks.value(op.slot, op.key)
			cur.Ops = append(cur.Ops, elle.A(op.key, v))
			if err := tx.Put([]byte(op.key), elle.AppendEncoded(b, v)); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	start := clock.Add(1)
	if readOnly && r.IntN(2) == 0 {
		err = db.View(context.Background(), attempt) // reads at the watermark
	} else {
		opts := &txkv.TxOptions{Strategy: strategy, Isolation: cfg.isolation,
			Retry: &txkv.RetryPolicy{MaxAttempts: 50}}
		err = db.Update(context.Background(), opts, attempt)
	}
	end := clock.Add(1)
	if garbage != nil {
		return garbage
	}
	// Every attempt began after start; the last ended before end.
	cur.Start, cur.End = start, end
	cur.Status = elle.Committed
	if err != nil {
		cur.Status = elle.Aborted
	}
	out.add(reason(err))
	rec.Add(*cur)
	return nil
}

// check runs the checker, with real-time edges (txkv promises strict
// serializability: Commit returns once the writes are visible to every
// transaction that begins afterwards), and logs its figures.
func elleCheck(t *testing.T, h []elle.Txn) *elle.Result {
	t.Helper()
	res, err := elle.CheckWith(h, &elle.CheckOptions{RealTime: true})
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	t.Logf("graph: %d nodes, edges ww=%d wr=%d rw=%d rt=%d, %d cyclic SCCs (largest %d); %s",
		res.Nodes, res.Edges[elle.WW], res.Edges[elle.WR], res.Edges[elle.RW], res.Edges[elle.RT], res.SCCs, res.LargestSCC, res.Summary())
	if res.Edges[elle.WW] == 0 || res.Edges[elle.WR] == 0 || res.Edges[elle.RW] == 0 {
		t.Errorf("too few dependencies for the check to mean anything: %v", res.Edges)
	}
	return res
}

// explain logs up to n anomalies with every transaction they involve.
func explain(t *testing.T, h []elle.Txn, res *elle.Result, n int) {
	t.Helper()
	byID := make(map[int]elle.Txn, len(h))
	for _, x := range h {
		byID[x.ID] = x
	}
	for i, a := range res.Anomalies {
		if i == n {
			t.Logf("... and %d more", len(res.Anomalies)-n)
			break
		}
		t.Logf("anomaly: %v", a)
		for _, id := range a.Txns {
			t.Logf("    %v", byID[id])
		}
	}
}

// requireSerializable fails the test on any anomaly, distinguishing a
// serializability violation (critical) from a real-time one (the history is
// serializable, but a transaction missed a commit that had finished before
// it began: not strictly serializable).
func requireSerializable(t *testing.T, h []elle.Txn, res *elle.Result) {
	t.Helper()
	if res.Valid() {
		return
	}
	explain(t, h, res, 5)
	for _, a := range res.Anomalies {
		if !strings.HasSuffix(string(a.Kind), "-realtime") {
			t.Fatalf("Serializable admitted anomalies: %s", res.Summary())
		}
	}
	t.Errorf("serializable, but not strictly: %s", res.Summary())
}

// ElleSerializable runs the list-append and write-skew workloads (n
// logical transactions from 16 workers) under Serializable with each of the
// target's strategies, and fails on any anomaly the checker finds, with
// real-time edges (strict serializability).
func ElleSerializable(t *testing.T, tg Target, n int, seed uint64) {
	for _, s := range tg.strategies() {
		for _, w := range []struct {
			name string
			work workload
		}{{"list-append", listAppend}, {"write-skew", writeSkew}} {
			t.Run(s.String()+"/"+w.name, func(t *testing.T) {
				db := tg.Open(t)
				h := elleRun(t, db, runConfig{strategy: s, strategies: tg.strategies(), isolation: txkv.Serializable, work: w.work, slots: 16, txns: n, seed: seed})
				requireSerializable(t, h, elleCheck(t, h))
			})
		}
	}
}

// ElleSerializableMixed runs list-append on db with the target's strategies
// side by side on the same keys (a random one per transaction).
func ElleSerializableMixed(t *testing.T, db *txkv.DB, tg Target, n int, seed uint64) {
	h := elleRun(t, db, runConfig{strategies: tg.strategies(), isolation: txkv.Serializable, work: listAppend, slots: 16, txns: n, seed: seed})
	requireSerializable(t, h, elleCheck(t, h))
}

// ElleSnapshot: (strong) snapshot isolation admits write skew (G2-item,
// also with real-time edges in its cycle) and nothing else; the write-skew workload must show G2-item, proving the
// checker can see what Serializable prevents.
func ElleSnapshot(t *testing.T, tg Target, n int, seed uint64) {
	for _, s := range tg.strategies() {
		for _, w := range []struct {
			name     string
			work     workload
			wantSkew bool
		}{{"list-append", listAppend, false}, {"write-skew", writeSkew, true}} {
			t.Run(s.String()+"/"+w.name, func(t *testing.T) {
				// Write skew needs two transactions to overlap just so; a
				// short run on 2 cores can miss it, so the write-skew
				// workload gets a few runs to show it (every run must
				// still admit nothing but G2-item).
				runs := 1
				if w.wantSkew {
					runs = 5
				}
				for attempt := range runs {
					db := tg.Open(t)
					h := elleRun(t, db, runConfig{strategy: s, strategies: tg.strategies(), isolation: txkv.Snapshot, work: w.work, slots: 16, txns: n, seed: seed + uint64(attempt)})
					res := elleCheck(t, h)
					counts := res.Counts()
					for kind := range counts {
						if kind != elle.G2Item && kind != elle.G2ItemRealtime {
							explain(t, h, res, 5)
							t.Fatalf("Snapshot admitted more than G2-item: %s", res.Summary())
						}
					}
					if len(counts) > 0 {
						explain(t, h, res, 1)
					}
					if !w.wantSkew || counts[elle.G2Item]+counts[elle.G2ItemRealtime] > 0 {
						return
					}
				}
				t.Fatalf("the write-skew workload showed no G2-item under Snapshot in %d runs", runs)
			})
		}
	}
}
