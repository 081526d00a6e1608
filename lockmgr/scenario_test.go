package lockmgr

// Scenario tests: every file in testdata/ is a datadriven script
// (github.com/cockroachdb/datadriven). Each opens with a "# Setup / # Test"
// banner. Regenerate expected output with `go test -run TestScenarios -rewrite`
// and review the diff.
//
// Command language (keys are strings, txn IDs are numbers; a transaction's
// age is its ID unless `age` sets another: larger is younger):
//
//	new [detection=immediate|periodic|off] [victim=youngest|requester]
//	    Start a fresh Manager (closing the previous one). Periodic mode uses a
//	    one-hour interval, so sweeps happen only via `sweep`.
//	label txn=N name=S
//	    SetLabel.
//	age txn=N age=A
//	    SetAge: txn N is as old as A for choosing deadlock victims.
//	acquire txn=N (key=K | start=K [end=K]) mode=S|X
//	        [policy=block|nowait|skiplocked|nowait-timeout] [timeout=D] [ctxtimeout=D]
//	    Acquire a point lock on key, or a range lock on [start,end) (no end:
//	    unbounded; start= with an empty value: from the first key). timeout is
//	    the lock timeout (default: none, Forever; nowait-timeout is Block with
//	    timeout 0), ctxtimeout a context deadline. Prints "ok", the
//	    error, or "waiting" if the request blocked; a blocked request keeps
//	    waiting in the background.
//	release txn=N     ReleaseAll (commit or rollback).
//	cancel txn=N      Cancel the context of txn N's blocked request and print
//	                  what that request returned.
//	await txn=N       Wait (at most 10s) for txn N's blocked request to return.
//	skip txn=N keys=K1,K2,... mode=S|X [limit=N]
//	    A SKIP LOCKED scan: try each key in order with SkipLocked and stop
//	    after limit locks; prints the keys locked.
//	locks             Print Locks(): one line per holder/waiter.
//	waiting txn=N     Print WaitingOn(N).
//	holds txn=N (key=K | start=K [end=K]) mode=S|X
//	heldbyother txn=N key=K mode=S|X
//	rangeheldbyother txn=N start=K [end=K] mode=S|X
//	dot               Print the wait-for graph as DOT.
//	sweep             Run one periodic deadlock sweep now.
//	stats             Print the counters that are deterministic.
//
// After every command the harness waits until each background request is
// either still queued (it appears in the wait-for graph) or has returned,
// and prints every request that returned as "txn N: <result>", in txn order.
// That makes each trace deterministic without sleeping.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/txkv/txkv/deadlock"
)

const settleDeadline = 10 * time.Second

func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{t: t, bgs: make(map[uint64]*bgAcquire)}
		defer h.close()
		datadriven.RunTest(t, path, h.run)
	})
}

type harness struct {
	t  *testing.T
	m  *Manager
	mu sync.Mutex // protects bgs (the hook reads it from Acquire goroutines)
	// bgs are the acquires not yet reported, by txn.
	bgs map[uint64]*bgAcquire
}

type bgAcquire struct {
	txn    uint64
	cancel context.CancelFunc
	parked chan struct{} // closed when the request queued (hooks.waiting)
	once   sync.Once
	done   chan error
}

func (h *harness) newManager(o *Options) {
	h.close()
	h.m = New(o)
	h.m.hooks.waiting = func(txn uint64) {
		h.mu.Lock()
		b := h.bgs[txn]
		h.mu.Unlock()
		if b != nil {
			b.once.Do(func() { close(b.parked) })
		}
	}
}

func (h *harness) close() {
	if h.m == nil {
		return
	}
	h.m.Close() // ends every pending wait with ErrClosed
	h.mu.Lock()
	bgs := h.bgs
	h.bgs = make(map[uint64]*bgAcquire)
	h.mu.Unlock()
	for _, b := range bgs {
		<-b.done
		b.cancel()
	}
	h.m = nil
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	if h.m == nil && d.Cmd != "new" {
		h.newManager(nil)
	}
	var out string
	switch d.Cmd {
	case "new":
		out = h.cmdNew(t, d)
	case "label":
		var name string
		d.ScanArgs(t, "name", &name)
		h.m.SetLabel(txnArg(t, d), name)
		out = "ok"
	case "age":
		var age uint64
		d.ScanArgs(t, "age", &age)
		h.m.SetAge(txnArg(t, d), age)
		out = "ok"
	case "acquire":
		out = h.cmdAcquire(t, d)
	case "release":
		h.m.ReleaseAll(txnArg(t, d))
		out = "ok"
	case "cancel":
		txn := txnArg(t, d)
		h.mu.Lock()
		b := h.bgs[txn]
		h.mu.Unlock()
		if b == nil {
			t.Fatalf("%s: txn %d has no pending request", d.Pos, txn)
		}
		b.cancel()
		out = fmt.Sprintf("txn %d: %s", txn, formatResult(h.wait(t, b)))
	case "await":
		out = h.cmdAwait(t, d)
	case "skip":
		out = h.cmdSkip(t, d)
	case "locks":
		out = formatLocks(h.m.Locks())
	case "waiting":
		info, ok := h.m.WaitingOn(txnArg(t, d))
		out = "not waiting"
		if ok {
			out = "waiting on " + formatInfo(info)
		}
	case "holds":
		tg, mode := targetArg(t, d), modeArg(t, d)
		out = fmt.Sprint(h.m.Holds(txnArg(t, d), tg, mode))
	case "heldbyother":
		var key string
		d.ScanArgs(t, "key", &key)
		out = fmt.Sprint(h.m.HeldByOther(txnArg(t, d), []byte(key), modeArg(t, d)))
	case "rangeheldbyother":
		tg := targetArg(t, d)
		out = fmt.Sprint(h.m.RangeHeldByOther(txnArg(t, d), tg.Key, tg.End, modeArg(t, d)))
	case "dot":
		var b strings.Builder
		if err := h.m.WriteDOT(&b); err != nil {
			t.Fatal(err)
		}
		out = strings.TrimSuffix(b.String(), "\n")
	case "sweep":
		h.m.sweep()
		out = "ok"
	case "stats":
		s := h.m.Stats()
		out = fmt.Sprintf("waits=%d timeouts=%d notavailable=%d skipped=%d deadlocks=%d cancels=%d reorders=%d",
			s.Waits, s.Timeouts, s.NotAvailable, s.Skipped, s.Deadlocks, s.Cancels, s.Reorders)
	default:
		t.Fatalf("%s: unknown command %q", d.Pos, d.Cmd)
	}
	if ev := h.settle(t); ev != "" {
		out += "\n" + ev
	}
	return out + "\n"
}

func (h *harness) cmdNew(t *testing.T, d *datadriven.TestData) string {
	o := &Options{Interval: time.Hour}
	if d.HasArg("detection") {
		var s string
		d.ScanArgs(t, "detection", &s)
		switch s {
		case "immediate":
			o.Detection = deadlock.Immediate
		case "periodic":
			o.Detection = deadlock.Periodic
		case "off":
			o.Detection = deadlock.Off
		default:
			t.Fatalf("%s: bad detection %q", d.Pos, s)
		}
	}
	if d.HasArg("victim") {
		var s string
		d.ScanArgs(t, "victim", &s)
		switch s {
		case "youngest":
			o.Victim = deadlock.Youngest
		case "requester":
			o.Victim = deadlock.Requester
		default:
			t.Fatalf("%s: bad victim %q", d.Pos, s)
		}
	}
	h.newManager(o)
	return "ok"
}

func (h *harness) cmdAcquire(t *testing.T, d *datadriven.TestData) string {
	txn, tg, mode := txnArg(t, d), targetArg(t, d), modeArg(t, d)
	p := Block
	if d.HasArg("policy") {
		var s string
		d.ScanArgs(t, "policy", &s)
		switch s {
		case "block":
		case "nowait":
			p = NoWait
		case "skiplocked":
			p = SkipLocked
		case "nowait-timeout": // Block with a timeout of 0, as the API spells it
			p = noWaitTimeout
		default:
			t.Fatalf("%s: bad policy %q", d.Pos, s)
		}
	}
	timeout := Forever
	if p == noWaitTimeout {
		p, timeout = Block, 0
	}
	if d.HasArg("timeout") {
		timeout = durationArg(t, d, "timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	if d.HasArg("ctxtimeout") {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), durationArg(t, d, "ctxtimeout"))
	}
	b := &bgAcquire{txn: txn, cancel: cancel, parked: make(chan struct{}), done: make(chan error, 1)}
	h.mu.Lock()
	if h.bgs[txn] != nil {
		h.mu.Unlock()
		t.Fatalf("%s: txn %d already has a pending request", d.Pos, txn)
	}
	h.bgs[txn] = b
	h.mu.Unlock()
	go func() { b.done <- h.m.Acquire(ctx, txn, tg, mode, p, timeout) }()
	select {
	case err := <-b.done:
		h.forget(b)
		return formatResult(err)
	case <-b.parked:
	case <-time.After(settleDeadline):
		t.Fatalf("%s: acquire neither returned nor queued", d.Pos)
	}
	if _, ok := h.m.WaitingOn(txn); ok {
		return "waiting"
	}
	err := h.wait(t, b) // queued, then aborted by its own deadlock search
	return formatResult(err)
}

func (h *harness) cmdAwait(t *testing.T, d *datadriven.TestData) string {
	txn := txnArg(t, d)
	h.mu.Lock()
	b := h.bgs[txn]
	h.mu.Unlock()
	if b == nil {
		t.Fatalf("%s: txn %d has no pending request", d.Pos, txn)
	}
	return fmt.Sprintf("txn %d: %s", txn, formatResult(h.wait(t, b)))
}

func (h *harness) cmdSkip(t *testing.T, d *datadriven.TestData) string {
	txn, mode := txnArg(t, d), modeArg(t, d)
	var keys string
	d.ScanArgs(t, "keys", &keys)
	limit := -1
	if d.HasArg("limit") {
		d.ScanArgs(t, "limit", &limit)
	}
	var got []string
	for _, k := range strings.Split(keys, ",") {
		if limit >= 0 && len(got) >= limit {
			break
		}
		err := h.m.Acquire(context.Background(), txn, Point([]byte(k)), mode, SkipLocked, Forever)
		switch {
		case err == nil:
			got = append(got, k)
		case errors.Is(err, ErrLockNotAvailable):
		default:
			return formatResult(err)
		}
	}
	if len(got) == 0 {
		return "locked: (none)"
	}
	return "locked: " + strings.Join(got, ",")
}

// wait blocks for b's result and forgets b.
func (h *harness) wait(t *testing.T, b *bgAcquire) error {
	select {
	case err := <-b.done:
		h.forget(b)
		return err
	case <-time.After(settleDeadline):
		t.Fatalf("txn %d: request did not return within %v", b.txn, settleDeadline)
		return nil
	}
}

func (h *harness) forget(b *bgAcquire) {
	b.cancel()
	h.mu.Lock()
	delete(h.bgs, b.txn)
	h.mu.Unlock()
}

// settle reports every background request that has returned, waiting for
// those that are no longer queued (their result is on its way).
func (h *harness) settle(t *testing.T) string {
	h.mu.Lock()
	var txns []uint64
	for txn := range h.bgs {
		txns = append(txns, txn)
	}
	h.mu.Unlock()
	slices.Sort(txns)
	var lines []string
	for _, txn := range txns {
		h.mu.Lock()
		b := h.bgs[txn]
		h.mu.Unlock()
		select {
		case err := <-b.done:
			h.forget(b)
			lines = append(lines, fmt.Sprintf("txn %d: %s", txn, formatResult(err)))
			continue
		default:
		}
		if _, ok := h.m.WaitingOn(txn); ok {
			continue
		}
		lines = append(lines, fmt.Sprintf("txn %d: %s", txn, formatResult(h.wait(t, b))))
	}
	return strings.Join(lines, "\n")
}

func formatResult(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

func formatInfo(l LockInfo) string {
	who := fmt.Sprintf("txn %d", l.TxID)
	if l.Label != "" {
		who += " (" + l.Label + ")"
	}
	state := "waiting"
	if l.Granted {
		state = "granted"
	}
	return fmt.Sprintf("%s: %s %s %s", formatTarget(l.Key, l.End, l.Range), who, l.Mode.short(), state)
}

func formatLocks(ls []LockInfo) string {
	if len(ls) == 0 {
		return "(none)"
	}
	lines := make([]string, len(ls))
	for i, l := range ls {
		lines[i] = formatInfo(l)
	}
	return strings.Join(lines, "\n")
}

func txnArg(t *testing.T, d *datadriven.TestData) uint64 {
	var n uint64
	d.ScanArgs(t, "txn", &n)
	return n
}

func modeArg(t *testing.T, d *datadriven.TestData) Mode {
	var s string
	d.ScanArgs(t, "mode", &s)
	switch s {
	case "S":
		return Shared
	case "X":
		return Exclusive
	}
	t.Fatalf("%s: bad mode %q", d.Pos, s)
	return 0
}

func targetArg(t *testing.T, d *datadriven.TestData) Target {
	if d.HasArg("key") {
		var k string
		d.ScanArgs(t, "key", &k)
		return Point([]byte(k))
	}
	var start string
	if d.HasArg("start") {
		d.ScanArgs(t, "start", &start)
	}
	var end []byte
	if d.HasArg("end") {
		var e string
		d.ScanArgs(t, "end", &e)
		end = []byte(e)
	}
	return Span([]byte(start), end)
}

func durationArg(t *testing.T, d *datadriven.TestData, key string) time.Duration {
	var s string
	d.ScanArgs(t, key, &s)
	v, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	return v
}
