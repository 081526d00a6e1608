package conformance

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/txkv/txkv"
)

// Store is the single-key API of the linearizability check; *txkv.DB implements it, and so
// do the broken wrappers.
type Store interface {
	Get(ctx context.Context, key []byte) ([]byte, error)
	Put(ctx context.Context, key, value []byte) error
	CompareAndSwap(ctx context.Context, key, old, new []byte) (bool, error)
	Increment(ctx context.Context, key []byte, delta int64) (int64, error)
}

type opKind uint8

const (
	opGet opKind = iota
	opPut
	opCAS
	opIncr
)

// input is one call. Values are int64s stored as 8 bytes big-endian (the
// format Increment uses), so every operation applies to every key.
type input struct {
	kind      opKind
	key       string
	val       int64 // Put: the value; CAS: the new value
	old       int64 // CAS: the expected value...
	oldAbsent bool  // ...or absence
	delta     int64 // Increment
}

// output is one result.
type output struct {
	found   bool  // Get
	val     int64 // Get: the value; Increment: the new value
	swapped bool  // CAS
}

// state is the sequential specification's state of one key.
type state struct {
	present bool
	val     int64
}

func step(s, in, out any) (bool, any) {
	st, i, o := s.(state), in.(input), out.(output)
	switch i.kind {
	case opGet:
		if !st.present {
			return !o.found, st
		}
		return o.found && o.val == st.val, st
	case opPut:
		return true, state{present: true, val: i.val}
	case opCAS:
		match := i.oldAbsent && !st.present || !i.oldAbsent && st.present && st.val == i.old
		if match {
			return o.swapped, state{present: true, val: i.val}
		}
		return !o.swapped, st
	default: // opIncr: absent counts as 0
		n := st.val + i.delta
		return o.val == n, state{present: true, val: n}
	}
}

var model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := make(map[string][]porcupine.Operation)
		var keys []string
		for _, op := range h {
			k := op.Input.(input).key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = byKey[k]
		}
		return out
	},
	Init: func() any { return state{} },
	Step: step,
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		switch i.kind {
		case opGet:
			if !o.found {
				return fmt.Sprintf("get(%s) -> absent", i.key)
			}
			return fmt.Sprintf("get(%s) -> %x", i.key, o.val)
		case opPut:
			return fmt.Sprintf("put(%s, %x)", i.key, i.val)
		case opCAS:
			old := fmt.Sprintf("%x", i.old)
			if i.oldAbsent {
				old = "absent"
			}
			return fmt.Sprintf("cas(%s, %s -> %x) -> %v", i.key, old, i.val, o.swapped)
		}
		return fmt.Sprintf("incr(%s, %d) -> %x", i.key, i.delta, o.val)
	},
	DescribeState: func(s any) string {
		if st := s.(state); st.present {
			return fmt.Sprintf("%x", st.val)
		}
		return "absent"
	},
}

func enc(v int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(v)) }

func dec(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("value %q is not 8 bytes", b)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// history records operations with logical-clock intervals. It also serves
// the broken wrappers, which need to know what completed when.
type history struct {
	clock atomic.Int64
	// mu protects ops.
	mu  sync.Mutex
	ops []porcupine.Operation
}

type callKey struct{}

// call applies in to s from client, stamping the interval. The call stamp
// travels in ctx so that a wrapper knows what had completed before it.
func (h *history) call(s Store, client int, in input) (output, error) {
	call := h.clock.Add(1)
	ctx := context.WithValue(context.Background(), callKey{}, call)
	out, err := apply(ctx, s, in)
	ret := h.clock.Add(1)
	if err != nil {
		return out, fmt.Errorf("client %d %+v: %w", client, in, err)
	}
	h.mu.Lock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
	h.mu.Unlock()
	return out, nil
}

func apply(ctx context.Context, s Store, in input) (output, error) {
	key := []byte(in.key)
	switch in.kind {
	case opGet:
		b, err := s.Get(ctx, key)
		if errors.Is(err, txkv.ErrNotFound) {
			return output{}, nil
		}
		if err != nil {
			return output{}, err
		}
		v, err := dec(b)
		return output{found: true, val: v}, err
	case opPut:
		return output{}, s.Put(ctx, key, enc(in.val))
	case opCAS:
		var old []byte
		if !in.oldAbsent {
			old = enc(in.old)
		}
		ok, err := s.CompareAndSwap(ctx, key, old, enc(in.val))
		return output{swapped: ok}, err
	}
	n, err := s.Increment(ctx, key, in.delta)
	return output{val: n}, err
}

// snapshot returns the operations completed so far.
func (h *history) snapshot() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// workload sizes: TXKV_LINEAR_OPS operations per client (default 300).
const (
	clients = 8
	keys    = 8
)

// unique returns a value no other call writes: spaced 2^24 apart, so no
// run of Increments (by at most 3 each) reaches the next one.
func unique(client, seq int) int64 { return int64(seq*clients+client+1) << 24 }

// drive runs the concurrent clients against s and returns the history.
// Client c calls stores[c % len(stores)]: several handles of one database.
func drive(t *testing.T, stores []Store, h *history, seed uint64, ops int) []porcupine.Operation {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(c)))
			last := make(map[string]*int64) // the last value this client saw per key
			for seq := range ops {
				in := input{key: "k" + strconv.Itoa(r.IntN(keys))}
				switch p := r.IntN(100); {
				case p < 30:
					in.kind = opGet
				case p < 55:
					in.kind, in.val = opPut, unique(c, seq)
				case p < 80:
					in.kind, in.val = opCAS, unique(c, seq)
					if v := last[in.key]; v != nil {
						in.old = *v
					} else {
						in.oldAbsent = true
					}
				default:
					in.kind, in.delta = opIncr, 1+r.Int64N(3)
				}
				out, err := h.call(stores[c%len(stores)], c, in)
				if err != nil {
					errs <- err
					return
				}
				switch {
				case in.kind == opGet && out.found, in.kind == opIncr:
					last[in.key] = &out.val
				case in.kind == opPut, in.kind == opCAS && out.swapped:
					last[in.key] = &in.val
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return h.snapshot()
}

// checkTimeout bounds porcupine's search; Unknown fails the test.
const checkTimeout = 2 * time.Minute

// Linearizable checks with porcupine that txkv's single-key operations
// (Get, Put, CompareAndSwap, Increment), called by concurrent clients over
// dbs (client c on dbs[c % len(dbs)]: handles of one database), are
// linearizable; ops calls per client.
func Linearizable(t *testing.T, dbs []*txkv.DB, seed uint64, ops int) {
	stores := make([]Store, len(dbs))
	for i, db := range dbs {
		stores[i] = db
	}
	h := &history{}
	hist := drive(t, stores, h, seed, ops)
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, hist, checkTimeout)
	t.Logf("%d operations on %d keys from %d clients: %s in %v", len(hist), keys, clients, res, time.Since(start))
	if res != porcupine.Ok {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("txkv-linear-%d.html", seed))
		if err := porcupine.VisualizePath(model, info, path); err == nil {
			t.Logf("visualization: %s", path)
		}
		dumpIllegal(t, hist, seed)
		t.Fatalf("history is %s, want Ok", res)
	}
}

// LinearBrokenRejected: the checker must reject a store that serves stale
// reads or loses puts; otherwise Linearizable's Ok would mean nothing.
func LinearBrokenRejected(t *testing.T, tg Target, seed uint64, ops int) {
	for _, broken := range []struct {
		name string
		wrap func(Store, *history, *rand.Rand) faulty
	}{
		{"stale-read", func(s Store, h *history, r *rand.Rand) faulty { return &staleReads{Store: s, h: h, r: r} }},
		{"lost-put", func(s Store, h *history, r *rand.Rand) faulty { return &lostPuts{Store: s, r: r} }},
	} {
		t.Run(broken.name, func(t *testing.T) {
			db := tg.Open(t)
			h := &history{}
			s := broken.wrap(db, h, rand.New(rand.NewPCG(seed, 1<<32)))
			hist := drive(t, []Store{s}, h, seed, ops)
			if s.injected() == 0 {
				t.Fatalf("the wrapper injected no fault in %d operations; raise TXKV_LINEAR_OPS", len(hist))
			}
			res := porcupine.CheckOperationsTimeout(model, hist, checkTimeout)
			t.Logf("%d operations, %d faults injected: %s", len(hist), s.injected(), res)
			if res != porcupine.Illegal {
				t.Fatalf("checker said %s for a %s store, want Illegal", res, broken.name)
			}
		})
	}
}

// faulty is a broken Store that counts the faults it injected.
type faulty interface {
	Store
	injected() int
}

// staleReads answers some Gets with a value that a later write, completed
// before the Get was called, had already replaced — provably stale, since
// a key never returns to a value it has left (see unique).
type staleReads struct {
	Store
	h *history
	// mu protects r and n.
	mu sync.Mutex
	r  *rand.Rand
	n  int
}

func (s *staleReads) injected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *staleReads) Get(ctx context.Context, key []byte) ([]byte, error) {
	s.mu.Lock()
	coin := s.r.IntN(4) == 0
	s.mu.Unlock()
	if coin {
		if v, ok := s.staleValue(string(key), ctx.Value(callKey{}).(int64)); ok {
			s.mu.Lock()
			s.n++
			s.mu.Unlock()
			return enc(v), nil
		}
	}
	return s.Store.Get(ctx, key)
}

// staleValue finds the newest write w of key such that another write w2
// started after w returned and returned before call.
func (s *staleReads) staleValue(key string, call int64) (int64, bool) {
	type write struct {
		val       int64
		call, ret int64
	}
	var ws []write
	for _, op := range s.h.snapshot() {
		in, out := op.Input.(input), op.Output.(output)
		if in.key != key || op.Return >= call {
			continue
		}
		switch {
		case in.kind == opPut, in.kind == opCAS && out.swapped:
			ws = append(ws, write{in.val, op.Call, op.Return})
		case in.kind == opIncr:
			ws = append(ws, write{out.val, op.Call, op.Return})
		}
	}
	best, found := write{}, false
	for _, w := range ws {
		for _, w2 := range ws {
			if w2.call > w.ret && (!found || w.ret > best.ret) {
				best, found = w, true
			}
		}
	}
	return best.val, found
}

// lostPuts acknowledges some Puts without writing them.
type lostPuts struct {
	Store
	// mu protects r and n.
	mu sync.Mutex
	r  *rand.Rand
	n  int
}

func (s *lostPuts) injected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *lostPuts) Put(ctx context.Context, key, value []byte) error {
	s.mu.Lock()
	lose := s.r.IntN(5) == 0
	if lose {
		s.n++
	}
	s.mu.Unlock()
	if lose {
		return nil
	}
	return s.Store.Put(ctx, key, value)
}

// dumpIllegal writes each key's history that is not linearizable on its own
// to a file, in call order, for diagnosis.
func dumpIllegal(t *testing.T, hist []porcupine.Operation, seed uint64) {
	t.Helper()
	for _, part := range model.Partition(hist) {
		if porcupine.CheckOperationsTimeout(model, part, checkTimeout) == porcupine.Ok {
			continue
		}
		sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		// The shortest prefix (in call order) that is already illegal ends
		// near the culprit.
		lo, hi := 1, len(part)
		for lo < hi {
			mid := (lo + hi) / 2
			if porcupine.CheckOperationsTimeout(model, part[:mid], checkTimeout) == porcupine.Illegal {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		var b strings.Builder
		fmt.Fprintf(&b, "the first %d operations are already illegal\n", lo)
		for _, op := range part {
			fmt.Fprintf(&b, "[%6d, %6d] client %d: %s\n", op.Call, op.Return, op.ClientId, model.DescribeOperation(op.Input, op.Output))
		}
		key := part[0].Input.(input).key
		path := filepath.Join(os.TempDir(), fmt.Sprintf("txkv-linear-%d-%s.txt", seed, key))
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err == nil {
			t.Logf("key %s is not linearizable; its %d operations: %s", key, len(part), path)
		}
	}
}
