package lockmgr

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/txkv/txkv/deadlock"
)

var diffSeed = flag.Uint64("diff.seed", 0, "replay TestDifferential with this seed (also env TXKV_DIFF_SEED)")

// TestDifferential drives the Manager and refModel with the same random
// script (acquire in every mode/policy on points and ranges, release,
// cancel) and after every step compares: the immediate result, which
// blocked requests completed and how, the whole lock table, and that the
// Manager's wait-for graph is exactly what its table implies. Deadlock
// resolutions are taken from the Manager (the hooks report each victim and
// each out-of-order grant, in order) and checked against the model: a
// victim must be on a cycle of the model's full wait-for graph, a reordered
// waiter must be on a cycle with only soft blockers, and afterwards the
// model must have no cycle left. Replay a failure with
// -diff.seed=N or TXKV_DIFF_SEED=N.
func TestDifferential(t *testing.T) {
	seed := *diffSeed
	if s := os.Getenv("TXKV_DIFF_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seed = v
	}
	seeds := []uint64{seed}
	if seed == 0 {
		base := uint64(time.Now().UnixNano())
		seeds = []uint64{base, base + 1, base + 2, base + 3}
	}
	steps := 1500
	if testing.Short() {
		steps = 300
	}
	for _, s := range seeds {
		t.Run(fmt.Sprint(s), func(t *testing.T) {
			t.Logf("seed %d (replay: TXKV_DIFF_SEED=%d go test -run TestDifferential ./lockmgr)", s, s)
			runDifferential(t, s, steps)
		})
	}
}

type diffRun struct {
	t   *testing.T
	rng *rand.Rand
	m   *Manager
	ref *refModel

	mu      sync.Mutex
	actions []string // hooks.resolved, in order: "victim 3 0", "reorder 2 0", "move 4 3"
	parked  map[uint64]chan struct{}
	pending map[uint64]*diffPending
	log     []string
}

type diffPending struct {
	done   chan error
	cancel context.CancelFunc
}

const diffTxns = 6

func runDifferential(t *testing.T, seed uint64, steps int) {
	d := &diffRun{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ref: &refModel{},
		parked: map[uint64]chan struct{}{}, pending: map[uint64]*diffPending{}}
	d.m = New(&Options{Shards: 4})
	d.m.hooks.waiting = func(txn uint64) {
		d.mu.Lock()
		ch := d.parked[txn]
		d.mu.Unlock()
		close(ch)
	}
	d.m.hooks.resolved = func(kind string, txn, other uint64) {
		d.mu.Lock()
		d.actions = append(d.actions, fmt.Sprintf("%s %d %d", kind, txn, other))
		d.mu.Unlock()
	}
	defer func() {
		d.m.Close()
		for _, p := range d.pending {
			<-p.done
			p.cancel()
		}
		if t.Failed() {
			t.Logf("last steps:\n%s", lastLines(d.log, 25))
		}
	}()
	for i := 0; i < steps && !t.Failed(); i++ {
		d.step(i)
	}
}

func lastLines(l []string, n int) string {
	if len(l) > n {
		l = l[len(l)-n:]
	}
	out := ""
	for _, s := range l {
		out += s + "\n"
	}
	return out
}

var diffKeys = []string{"a", "b", "c", "d", "e"}

func (d *diffRun) randomReq(txn uint64) (*refReq, Target) {
	mode := Mode(d.rng.IntN(2))
	if d.rng.IntN(4) > 0 {
		k := diffKeys[d.rng.IntN(len(diffKeys))]
		return &refReq{txn: txn, key: k, mode: mode}, Point([]byte(k))
	}
	starts := []string{"", "a", "b", "c", "d"}
	s := starts[d.rng.IntN(len(starts))]
	r := &refReq{txn: txn, key: s, isRange: true, mode: mode}
	var ends []string
	for _, e := range []string{"b", "c", "d", "e", "f"} {
		if e > s {
			ends = append(ends, e)
		}
	}
	if d.rng.IntN(3) == 0 {
		r.endNil = true
		return r, Span([]byte(s), nil)
	}
	r.end = ends[d.rng.IntN(len(ends))]
	return r, Span([]byte(s), []byte(r.end))
}

func (d *diffRun) step(i int) {
	t := d.t
	txn := uint64(1 + d.rng.IntN(diffTxns))
	_, busy := d.pending[txn]
	var desc, got, want string
	var refGranted []uint64
	switch op := d.rng.IntN(10); {
	case busy && op < 3:
		desc = fmt.Sprintf("cancel %d", txn)
		p := d.pending[txn]
		p.cancel()
		err := <-p.done
		delete(d.pending, txn)
		if err == nil {
			// Granted just before the cancel took effect: it must have been
			// granted by the model in an earlier step already, which the
			// settle below would have reported. Treat as a protocol error.
			t.Fatalf("step %d %s: cancelled request returned nil", i, desc)
		}
		got = errClass(err)
		want = "canceled"
		if d.ref.waitingOf(txn) != nil {
			refGranted = d.ref.remove(txn)
		}
	case busy:
		return
	case op < 3:
		desc = fmt.Sprintf("release %d", txn)
		d.m.ReleaseAll(txn)
		refGranted = d.ref.release(txn)
		got, want = "ok", "ok"
	default:
		p := []WaitPolicy{Block, Block, Block, NoWait, SkipLocked, noWaitTimeout}[d.rng.IntN(6)]
		rr, tg := d.randomReq(txn)
		desc = fmt.Sprintf("acquire %d %s %s %s", txn, tg, rr.mode.short(), p)
		got = d.acquire(txn, tg, rr.mode, p)
		want = d.ref.acquire(rr, p)
		if want == "na" && p == noWaitTimeout {
			want = "timeout"
		}
	}
	d.log = append(d.log, fmt.Sprintf("%d: %s -> %s", i, desc, got))
	completions := d.settle()
	granted, victims := d.applyActions(i, desc)
	refGranted = append(refGranted, granted...)
	if want == "waiting" && d.ref.waitingOf(txn) == nil {
		// The request queued and was resolved within the same step: by its
		// own deadlock search (victim) or a soft-deadlock reorder.
		switch {
		case slices.Contains(victims, txn):
			want = "deadlock"
		case slices.Contains(refGranted, txn):
			want = "ok"
			refGranted = slices.DeleteFunc(refGranted, func(x uint64) bool { return x == txn })
		}
	}
	if got != want {
		t.Fatalf("step %d %s: manager %q, model %q", i, desc, got, want)
	}
	d.compareCompletions(i, desc, completions, refGranted)
	if d.ref.hasCycle() {
		var dot strings.Builder
		_ = d.m.WriteDOT(&dot)
		t.Fatalf("step %d %s: the model still has a cycle after the manager settled\nmodel: %s\nmanager graph: %s",
			i, desc, formatLocks(d.ref.locks()), dot.String())
	}
	d.compareLocks(i, desc)
	d.checkGraph(i, desc)
}

// checkGraph verifies that the wait-for graph is an exact image of the lock
// table: one node per waiting request, carrying exactly the edges computed
// from the table now, and every point waiter's prevX cache is what a walk
// of its queue gives. The early stop of refreshHeadLocked relies on both.
func (d *diffRun) checkGraph(i int, desc string) {
	m := d.m
	m.lockAll()
	defer m.unlockAll()
	waiting := 0
	check := func(r *request, want []deadlock.Edge) {
		waiting++
		m.graph.Lock()
		on, ok := m.graph.WaitingOnLocked(r.txn)
		got := slices.Clone(m.graph.OutLocked(r.txn))
		m.graph.Unlock()
		if !ok || on != r {
			d.t.Fatalf("step %d %s: txn %d waits in the table but not in the graph", i, desc, r.txn)
		}
		g := deadlock.NewGraph[int]()
		g.SetWaits(r.txn, 0, want)
		if w := g.Edges(); fmt.Sprint(got) != fmt.Sprint(w) {
			d.t.Fatalf("step %d %s: txn %d has edges %v in the graph, the table says %v", i, desc, r.txn, got, w)
		}
	}
	m.forEachHeadLocked(func(h *lockHead) {
		for w := h.waiters.head; w != nil; w = w.next {
			var x *request
			for x = w.prev; x != nil && x.mode != Exclusive; x = x.prev {
			}
			if w.prevX != x {
				d.t.Fatalf("step %d %s: txn %d on %q: stale prevX", i, desc, w.txn, h.key)
			}
			check(w, m.pointEdgesLocked(w, w.prev, nil))
		}
	})
	for _, r := range m.rt.reqs {
		if r.state == stateWaiting {
			check(r, m.rangeEdgesLocked(r, nil))
		}
	}
	if n, _ := m.graph.Len(); n != waiting {
		d.t.Fatalf("step %d %s: %d waiters in the graph, %d in the table", i, desc, n, waiting)
	}
}

// acquire runs one Acquire and classifies its immediate outcome.
func (d *diffRun) acquire(txn uint64, tg Target, mode Mode, p WaitPolicy) string {
	ctx, cancel := context.WithCancel(context.Background())
	pd := &diffPending{done: make(chan error, 1), cancel: cancel}
	parked := make(chan struct{})
	d.mu.Lock()
	d.parked[txn] = parked
	d.mu.Unlock()
	timeout := Forever
	if p == noWaitTimeout { // as the API asks for it: Block, at most 0
		p, timeout = Block, 0
	}
	go func() { pd.done <- d.m.Acquire(ctx, txn, tg, mode, p, timeout) }()
	select {
	case err := <-pd.done:
		cancel()
		return errClass(err)
	case <-parked:
	}
	if _, ok := d.m.WaitingOn(txn); ok {
		d.pending[txn] = pd
		return "waiting"
	}
	err := <-pd.done
	cancel()
	return errClass(err)
}

func errClass(err error) string {
	var de *DeadlockError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrLockNotAvailable):
		return "na"
	case errors.Is(err, ErrLockTimeout):
		return "timeout"
	case errors.As(err, &de):
		return "deadlock"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return err.Error()
}

// settle collects every pending request that is no longer queued.
func (d *diffRun) settle() map[uint64]string {
	out := map[uint64]string{}
	for _, txn := range sortedKeys(d.pending) {
		p := d.pending[txn]
		if _, ok := d.m.WaitingOn(txn); ok {
			select {
			case err := <-p.done:
				d.t.Fatalf("txn %d returned %v while still in the graph", txn, err)
			default:
			}
			continue
		}
		select {
		case err := <-p.done:
			out[txn] = errClass(err)
		case <-time.After(10 * time.Second):
			d.t.Fatalf("txn %d left the graph but did not return", txn)
		}
		p.cancel()
		delete(d.pending, txn)
	}
	return out
}

func sortedKeys[V any](m map[uint64]V) []uint64 {
	ks := make([]uint64, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// applyActions replays the manager's deadlock resolutions on the model,
// checking each is justified; it returns the waiters the model granted.
func (d *diffRun) applyActions(i int, desc string) (granted, victims []uint64) {
	d.mu.Lock()
	actions := d.actions
	d.actions = nil
	d.mu.Unlock()
	for _, a := range actions {
		var kind string
		var txn, other uint64
		fmt.Sscanf(a, "%s %d %d", &kind, &txn, &other)
		w := d.ref.waitingOf(txn)
		if w == nil || !d.ref.onCycle(txn) {
			d.t.Fatalf("step %d %s: manager %s, but txn %d is on no cycle of the model", i, desc, a, txn)
		}
		switch kind {
		case "victim":
			victims = append(victims, txn)
			granted = append(granted, d.ref.remove(txn)...)
		case "reorder":
			if h, _ := d.ref.blockers(w); len(h) > 0 {
				d.t.Fatalf("step %d %s: manager reordered txn %d which has hard blockers %v", i, desc, txn, h)
			}
			d.ref.grant(w)
			granted = append(granted, txn)
			granted = append(granted, d.ref.settle()...)
		case "move":
			b := d.ref.waitingOf(other)
			if b == nil || !Conflicts(w.mode, b.mode) || !refOverlap(w, b) || !d.ref.ahead(b, w) ||
				d.ref.passes(w, b) != d.ref.passes(b, w) {
				d.t.Fatalf("step %d %s: manager moved txn %d ahead of txn %d, not queued ahead of it by order alone",
					i, desc, txn, other)
			}
			w.pos = b.pos - 1
			if g := d.ref.settle(); len(g) > 0 {
				d.t.Fatalf("step %d %s: moving txn %d ahead made %v grantable", i, desc, txn, g)
			}
		}
		d.log = append(d.log, "   resolved: "+a)
	}
	return granted, victims
}

func (d *diffRun) compareCompletions(i int, desc string, got map[uint64]string, refGranted []uint64) {
	want := map[uint64]string{}
	for _, txn := range refGranted {
		if _, ok := d.pending[txn]; ok {
			d.t.Fatalf("step %d %s: model granted txn %d, manager still has it waiting", i, desc, txn)
		}
		want[txn] = "ok"
	}
	for txn, class := range got {
		switch class {
		case "ok":
			if want[txn] != "ok" {
				d.t.Fatalf("step %d %s: manager granted txn %d, model did not", i, desc, txn)
			}
		case "deadlock":
			// justified in applyActions
		default:
			d.t.Fatalf("step %d %s: txn %d completed with %s", i, desc, txn, class)
		}
	}
	for txn := range want {
		if _, ok := got[txn]; !ok {
			d.t.Fatalf("step %d %s: model granted txn %d, manager did not report it", i, desc, txn)
		}
	}
}

func (d *diffRun) compareLocks(i int, desc string) {
	got := d.m.Locks()
	for j := range got {
		got[j].Since, got[j].Label = time.Time{}, ""
		if len(got[j].Key) == 0 {
			got[j].Key = []byte{}
		}
	}
	want := d.ref.locks()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		d.t.Fatalf("step %d %s: lock tables differ\nmanager: %s\nmodel:   %s", i, desc, formatLocks(got), formatLocks(want))
	}
}
