package elle_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"go.uber.org/goleak"

	"github.com/txkv/txkv/internal/testenv"
	"github.com/txkv/txkv/reliability/elle"
)

// Short names for the hand-built histories.
type (
	Txn    = elle.Txn
	Op     = elle.Op
	Result = elle.Result
)

var (
	R, A  = elle.R, elle.A
	Check = elle.Check
)

const (
	G0, G1a, G1b, G1c, GSingle, G2Item = elle.G0, elle.G1a, elle.G1b, elle.G1c, elle.GSingle, elle.G2Item
	Committed, Aborted, Unknown        = elle.Committed, elle.Aborted, elle.Unknown
	WW, WR, RW                         = elle.WW, elle.WR, elle.RW
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// c and ab build committed and aborted transactions tersely.
func c(id int, ops ...Op) Txn  { return Txn{ID: id, Status: Committed, Ops: ops} }
func ab(id int, ops ...Op) Txn { return Txn{ID: id, Status: Aborted, Ops: ops} }

func mustCheck(t *testing.T, h []Txn) *Result {
	t.Helper()
	res, err := Check(h)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return res
}

// TestAnomalies: each hand-built history exhibits one anomaly, which must be
// found with exactly that class (and nothing else).
func TestAnomalies(t *testing.T) {
	cases := []struct {
		name string
		want elle.AnomalyKind
		h    []Txn
	}{
		{"G0 dirty write: x orders T1<T2, y orders T2<T1", G0, []Txn{
			c(1, A("x", 1), A("y", 1)),
			c(2, A("x", 2), A("y", 2)),
			c(3, R("x", 1, 2), R("y", 2, 1)),
		}},
		{"G0 three-way write cycle", G0, []Txn{
			c(1, A("x", 1), A("z", 2)),
			c(2, A("x", 2), A("y", 1)),
			c(3, A("y", 2), A("z", 1)),
			c(4, R("x", 1, 2), R("y", 1, 2), R("z", 1, 2)),
		}},
		{"G1a aborted read", G1a, []Txn{
			ab(1, A("x", 1)),
			c(2, R("x", 1)),
		}},
		{"G1b intermediate read", G1b, []Txn{
			c(1, A("x", 1), A("x", 2)),
			c(2, R("x", 1)),
			c(3, R("x", 1, 2)),
		}},
		{"G1c circular information flow (wr only)", G1c, []Txn{
			c(1, A("x", 1), R("y", 1)),
			c(2, A("y", 1), R("x", 1)),
		}},
		{"G1c with a ww edge", G1c, []Txn{
			c(1, A("x", 1), A("y", 2)),
			c(2, R("x", 1), A("y", 1)),
			c(3, R("y", 1, 2)),
		}},
		{"G-single read skew", GSingle, []Txn{
			c(1, R("x"), R("y", 1)),
			c(2, A("x", 1), A("y", 1)),
			c(3, R("x", 1)),
		}},
		{"G-single lost update", GSingle, []Txn{
			c(1, R("x"), A("x", 1)),
			c(2, R("x"), A("x", 2)),
			c(3, R("x", 2, 1)),
		}},
		{"G2-item write skew", G2Item, []Txn{
			c(1, R("x"), R("y"), A("x", 1)),
			c(2, R("x"), R("y"), A("y", 1)),
			c(3, R("x", 1), R("y", 1)),
		}},
		{"G2-item three rw edges", G2Item, []Txn{
			c(1, R("x"), A("y", 1)),
			c(2, R("y"), A("z", 1)),
			c(3, R("z"), A("x", 1)),
			c(4, R("x", 1), R("y", 1), R("z", 1)),
		}},
		{"incompatible order", elle.IncompatibleOrder, []Txn{
			c(1, A("x", 1)),
			c(2, A("x", 2)),
			c(3, R("x", 1, 2)),
			c(4, R("x", 2, 1)),
		}},
		{"duplicate elements", elle.DuplicateElements, []Txn{
			c(1, A("x", 1)),
			c(2, R("x", 1, 1)),
		}},
		{"garbage read", elle.GarbageRead, []Txn{
			c(1, A("x", 1)),
			c(2, R("x", 1, 99)),
		}},
		{"internal: own append missing", elle.Internal, []Txn{
			c(1, A("x", 1), R("x")),
		}},
		{"internal: non-repeatable read", elle.Internal, []Txn{
			c(1, R("x")),
			c(2, A("x", 1)),
			c(3, R("x"), R("x", 1)),
			c(4, R("x", 1)),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := mustCheck(t, tc.h)
			if len(res.Anomalies) == 0 {
				t.Fatalf("no anomaly found, want %s", tc.want)
			}
			for _, a := range res.Anomalies {
				t.Logf("found %v", a)
				if a.Kind != tc.want {
					t.Errorf("found %s, want only %s: %v", a.Kind, tc.want, a)
				}
			}
			if a := res.Anomalies[0]; a.Kind.IsCycle() && !validCycle(a) {
				t.Errorf("cycle does not close or has the wrong rw count: %v", a)
			}
		})
	}
}

// validCycle checks that a reported cycle is a closed walk whose number of
// rw edges matches its class.
func validCycle(a elle.Anomaly) bool {
	rw := 0
	for i, s := range a.Cycle {
		if s.To != a.Cycle[(i+1)%len(a.Cycle)].From {
			return false
		}
		if s.Kind == RW {
			rw++
		}
	}
	switch a.Kind {
	case G0, G1c:
		return rw == 0
	case GSingle, elle.GSingleRealtime:
		return rw == 1
	case G2Item, elle.G2ItemRealtime:
		return rw >= 2
	}
	return false
}

// at sets a transaction's real-time bounds.
func at(t Txn, start, end int64) Txn {
	t.Start, t.End = start, end
	return t
}

// TestRealTime: a read that misses a write finished before it began is
// serializable (the reader goes first) but not strictly serializable.
func TestRealTime(t *testing.T) {
	stale := []Txn{
		at(c(1, A("x", 1)), 1, 2),
		at(c(2, R("x")), 3, 4),
		at(c(3, R("x", 1)), 5, 6),
	}
	if res := mustCheck(t, stale); !res.Valid() {
		t.Fatalf("without RealTime: %v, want valid", res.Anomalies)
	}
	res, err := elle.CheckWith(stale, &elle.CheckOptions{RealTime: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Anomalies) != 1 || res.Anomalies[0].Kind != elle.GSingleRealtime || !validCycle(res.Anomalies[0]) {
		t.Fatalf("with RealTime: %v, want one G-single-realtime", res.Anomalies)
	}
	t.Logf("found %v", res.Anomalies[0])
	// Overlapping (or touching) intervals impose no order.
	for _, h := range [][]Txn{
		{at(c(1, A("x", 1)), 1, 5), at(c(2, R("x")), 3, 4), at(c(3, R("x", 1)), 6, 7)},
		{at(c(1, A("x", 1)), 1, 3), at(c(2, R("x")), 3, 4), at(c(3, R("x", 1)), 6, 7)},
	} {
		res, err := elle.CheckWith(h, &elle.CheckOptions{RealTime: true})
		if err != nil || !res.Valid() {
			t.Errorf("concurrent history: %v, %v; want valid", res, err)
		}
	}
}

// TestMostSevereClassWins: an SCC holding both a write skew (G2-item) and a
// read skew (G-single) is reported once, as G-single.
func TestMostSevereClassWins(t *testing.T) {
	h := []Txn{
		c(1, R("x"), R("y"), A("x", 1), A("z", 1)),
		c(2, R("x"), R("y"), A("y", 1)),
		c(3, R("x", 1), R("y", 1)),
		// T4 sees T1's z but not T1's x: a read skew sharing T1 with the
		// write skew of T1 and T2.
		c(4, R("z", 1), R("x")),
	}
	res := mustCheck(t, h)
	got := res.Counts()
	if len(res.Anomalies) != 1 || got[GSingle] != 1 {
		t.Fatalf("got %v, want one G-single", res.Anomalies)
	}
}

// TestValidHandBuilt: serializable histories, including ones with aborted
// transactions nobody read, own-write reads, and unknown outcomes.
func TestValidHandBuilt(t *testing.T) {
	hs := [][]Txn{
		{},
		{c(1, R("x"))},
		{c(1, A("x", 1)), c(2, R("x", 1))},
		{c(1, A("x", 1), R("x", 1)), c(2, R("x", 1), A("x", 2), R("x", 1, 2))},
		{c(1, A("x", 1)), ab(2, A("x", 2)), c(3, R("x", 1))},
		{c(1, R("x"), R("y"), A("x", 1)), c(2, R("x", 1), R("y"), A("y", 1)), c(3, R("x", 1), R("y", 1))},
		{c(1, A("x", 1), A("x", 2)), c(2, R("x", 1, 2))},
		{{ID: 1, Status: Unknown, Ops: []Op{A("x", 1)}}, c(2, R("x", 1)), {ID: 3, Status: Unknown, Ops: []Op{A("x", 2)}}},
		{c(1, A("x", 1)), c(2, A("x", 2)), c(3, R("x", 1)), c(4, R("x", 1, 2))},
		{c(7, A("a", 5), A("b", 5)), c(3, R("a", 5), R("b", 5)), c(9, R("a", 5), A("a", 6))},
	}
	for i, h := range hs {
		if res := mustCheck(t, h); !res.Valid() {
			t.Errorf("history %d: %v", i, res.Anomalies)
		}
	}
}

// TestValidSerial: 10 generated serial executions, checked with real-time
// order too, (the seed is logged;
// TXKV_ELLE_SEED replays) are valid.
func TestValidSerial(t *testing.T) {
	seed := seedFromEnv(t)
	for i := range 10 {
		h := serialHistory(rand.New(rand.NewPCG(seed, uint64(i))), 300, 5)
		res, err := elle.CheckWith(h, &elle.CheckOptions{RealTime: true})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid() {
			t.Fatalf("serial history %d (seed %d): %v", i, seed, res.Anomalies[0])
		}
		if res.Edges[WW] == 0 || res.Edges[WR] == 0 || res.Edges[RW] == 0 || res.Edges[elle.RT] == 0 {
			t.Fatalf("serial history %d has too few dependencies to test anything: %v", i, res.Edges)
		}
	}
}

func TestMalformed(t *testing.T) {
	for _, h := range [][]Txn{
		{c(1, A("x", 1)), c(1, A("y", 1))},
		{c(1, A("x", 1)), c(2, A("x", 1))},
		{{ID: 1, Status: 9}},
		{c(1, Op{Kind: 7})},
		{at(c(1), 5, 4)},
	} {
		if _, err := Check(h); !errors.Is(err, elle.ErrMalformed) {
			t.Errorf("Check(%v) = %v, want elle.ErrMalformed", h, err)
		}
	}
}

func TestListEncoding(t *testing.T) {
	for _, l := range [][]int{nil, {1}, {1, 22, 333}, {-5, 0}} {
		enc := elle.EncodeList(l)
		got, err := elle.DecodeList(enc)
		if err != nil || fmt.Sprint(got) != fmt.Sprint(l) && len(l) > 0 {
			t.Errorf("round trip %v: %q -> %v, %v", l, enc, got, err)
		}
		got, err = elle.DecodeList(elle.AppendEncoded(enc, 7))
		if err != nil || len(got) != len(l)+1 || got[len(l)] != 7 {
			t.Errorf("elle.AppendEncoded(%q, 7) decodes to %v, %v", enc, got, err)
		}
	}
	for _, bad := range []string{",", "1,,2", "x", "1,2,"} {
		if _, err := elle.DecodeList([]byte(bad)); err == nil {
			t.Errorf("elle.DecodeList(%q) accepted garbage", bad)
		}
	}
}

// serialHistory runs n random transactions one after another against a
// map, so the history is serial by construction. Some transactions abort
// (their appends are discarded and never read).
func serialHistory(r *rand.Rand, n, keys int) []Txn {
	state := make(map[string][]int)
	next := make(map[string]int)
	var h []Txn
	for id := 1; id <= n; id++ {
		t := Txn{ID: id, Status: Committed, Start: int64(2 * id), End: int64(2*id + 1)}
		if r.IntN(10) == 0 {
			t.Status = Aborted
		}
		local := make(map[string][]int)
		for range 1 + r.IntN(4) {
			k := "k" + strconv.Itoa(r.IntN(keys))
			cur, ok := local[k]
			if !ok {
				cur = state[k]
			}
			if r.IntN(2) == 0 {
				t.Ops = append(t.Ops, R(k, cur...))
				continue
			}
			next[k]++
			t.Ops = append(t.Ops, A(k, next[k]))
			local[k] = append(append([]int(nil), cur...), next[k])
		}
		if t.Status == Committed {
			for k, l := range local {
				state[k] = l
			}
		}
		h = append(h, t)
	}
	// A final reader of every key fixes the version orders.
	final := Txn{ID: n + 1, Status: Committed, Start: int64(2*n + 2), End: int64(2*n + 3)}
	for k, l := range state {
		final.Ops = append(final.Ops, R(k, l...))
	}
	return append(h, final)
}

// seedFromEnv returns TXKV_ELLE_SEED if set, else a fresh seed; it logs it.
func seedFromEnv(t *testing.T) uint64 { return testenv.Seed(t, "TXKV_ELLE_SEED") }
