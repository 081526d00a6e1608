package elle

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// AnomalyKind names an anomaly, in Adya's vocabulary where there is one.
type AnomalyKind string

// The anomalies Check reports. The cycle classes are listed from the most
// to the least severe: each SCC of the dependency graph is reported once,
// under the most severe class among its cycles.
const (
	G0      AnomalyKind = "G0"       // write cycle: ww edges only (dirty write)
	G1a     AnomalyKind = "G1a"      // aborted read: a committed txn saw an aborted write
	G1b     AnomalyKind = "G1b"      // intermediate read: saw a write its writer later overwrote
	G1c     AnomalyKind = "G1c"      // circular information flow: ww and wr edges, at least one wr
	GSingle AnomalyKind = "G-single" // exactly one rw edge (read skew)
	G2Item  AnomalyKind = "G2-item"  // two or more rw edges (write skew)

	// With CheckOptions.RealTime, a component whose only cycles need
	// real-time edges is reported under one of these: serializable, but
	// not strictly (a transaction missed one that had finished before it
	// began).
	G0Realtime      = G0 + realtime
	G1cRealtime     = G1c + realtime
	GSingleRealtime = GSingle + realtime
	G2ItemRealtime  = G2Item + realtime

	// IncompatibleOrder: two reads of one key are not prefixes of each other,
	// so no single version order explains them.
	IncompatibleOrder AnomalyKind = "incompatible-order"
	// DuplicateElements: a read list holds one value twice.
	DuplicateElements AnomalyKind = "duplicate-elements"
	// GarbageRead: a read holds a value nobody appended.
	GarbageRead AnomalyKind = "garbage-read"
	// Internal: a transaction's read disagrees with its own earlier reads
	// and appends of the same key.
	Internal AnomalyKind = "internal"
)

const realtime = "-realtime"

// IsCycle reports whether k is one of the dependency-cycle classes.
func (k AnomalyKind) IsCycle() bool {
	switch strings.TrimSuffix(string(k), realtime) {
	case string(G0), string(G1c), string(GSingle), string(G2Item):
		return true
	}
	return false
}

// Anomaly is one violation found in a history.
type Anomaly struct {
	Kind   AnomalyKind
	Key    string // the key involved ("" for cycles; see Cycle)
	Txns   []int  // IDs of the transactions involved; for cycles, in cycle order
	Cycle  []Step // for cycle classes: the edges of one cycle, closing on Txns[0]
	Detail string
}

func (a Anomaly) String() string {
	if len(a.Cycle) == 0 {
		return fmt.Sprintf("%s on key %q: %s", a.Kind, a.Key, a.Detail)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: ", a.Kind)
	for i, s := range a.Cycle {
		if i == 0 {
			fmt.Fprintf(&b, "T%d", s.From)
		}
		if s.Key == "" {
			fmt.Fprintf(&b, " -%s-> T%d", s.Kind, s.To)
		} else {
			fmt.Fprintf(&b, " -%s(%s)-> T%d", s.Kind, s.Key, s.To)
		}
	}
	if a.Detail != "" {
		b.WriteString("; " + a.Detail)
	}
	return b.String()
}

// Result is the outcome of Check.
type Result struct {
	Anomalies  []Anomaly
	Txns       int             // transactions in the history
	Nodes      int             // transactions in the dependency graph
	Edges      map[DepKind]int // edges by kind (an edge may carry several kinds)
	SCCs       int             // strongly connected components with a cycle
	LargestSCC int
}

// Valid reports whether no anomaly was found.
func (r *Result) Valid() bool { return len(r.Anomalies) == 0 }

// Counts returns the number of anomalies of each kind.
func (r *Result) Counts() map[AnomalyKind]int {
	m := make(map[AnomalyKind]int)
	for _, a := range r.Anomalies {
		m[a.Kind]++
	}
	return m
}

// Summary is a one-line description of the anomaly counts, sorted by kind.
func (r *Result) Summary() string {
	c := r.Counts()
	if len(c) == 0 {
		return "no anomalies"
	}
	kinds := make([]string, 0, len(c))
	for k, n := range c {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, " ")
}

// writeRef locates an appended value: which transaction appended it and
// whether it was that transaction's last append to the key.
type writeRef struct {
	txn  int // index into the history
	last bool
}

type kv struct {
	key string
	val int
}

// checker holds the state of one Check call.
type checker struct {
	h       []Txn
	writers map[kv]writeRef
	// ext[i][key] is transaction i's first external observation of key:
	// what it read before or apart from its own appends.
	ext       []map[string][]int
	order     map[string][]int // inferred version order of each key
	badOrder  map[string]bool  // keys whose reads are incompatible
	inGraph   []bool
	anomalies []Anomaly
}

// CheckOptions select optional checks; nil means none.
type CheckOptions struct {
	// RealTime adds an rt edge Ti -> Tj when committed Ti ended before Tj
	// started (Txn.End < Txn.Start, both known), checking strict
	// serializability: cycles that need such edges are reported with the
	// "-realtime" classes.
	RealTime bool
}

// Check analyses a list-append history: it infers each key's version
// order, reports the non-cycle anomalies (G1a, G1b, incompatible orders,
// garbage and duplicate reads, internal inconsistencies), builds the
// dependency graph of committed transactions and reports each cyclic
// strongly connected component under its most severe class. A history
// it cannot interpret gives an error wrapping ErrMalformed.
func Check(h []Txn) (*Result, error) { return CheckWith(h, nil) }

// CheckWith is Check with options.
func CheckWith(h []Txn, opts *CheckOptions) (*Result, error) {
	if opts == nil {
		opts = &CheckOptions{}
	}
	c := &checker{h: h}
	if err := c.indexWrites(); err != nil {
		return nil, err
	}
	c.internal()
	c.inferOrders()
	c.readAnomalies()
	g := c.buildGraph()
	if opts.RealTime {
		c.realTimeEdges(g)
	}
	res := &Result{Txns: len(h), Edges: g.counts()}
	for i := range h {
		if c.inGraph[i] {
			res.Nodes++
		}
	}
	for _, scc := range g.sccs() {
		res.SCCs++
		res.LargestSCC = max(res.LargestSCC, len(scc))
		c.anomalies = append(c.anomalies, g.classify(scc))
	}
	res.Anomalies = c.anomalies
	return res, nil
}

func (c *checker) report(kind AnomalyKind, key string, txns []int, format string, args ...any) {
	ids := make([]int, len(txns))
	for i, t := range txns {
		ids[i] = c.h[t].ID
	}
	c.anomalies = append(c.anomalies, Anomaly{Kind: kind, Key: key, Txns: ids, Detail: fmt.Sprintf(format, args...)})
}

// indexWrites maps every appended (key, value) to its writer, rejecting
// duplicate IDs and duplicate appends.
func (c *checker) indexWrites() error {
	c.writers = make(map[kv]writeRef)
	ids := make(map[int]bool, len(c.h))
	for i, t := range c.h {
		if ids[t.ID] {
			return fmt.Errorf("%w: duplicate transaction ID %d", ErrMalformed, t.ID)
		}
		ids[t.ID] = true
		if t.Status > Unknown {
			return fmt.Errorf("%w: T%d has invalid status %d", ErrMalformed, t.ID, t.Status)
		}
		if t.End < t.Start && t.End != 0 {
			return fmt.Errorf("%w: T%d ends (%d) before it starts (%d)", ErrMalformed, t.ID, t.End, t.Start)
		}
		lastIdx := make(map[string]int)
		for j, o := range t.Ops {
			switch o.Kind {
			case Append:
				k := kv{o.Key, o.Value}
				if w, dup := c.writers[k]; dup {
					return fmt.Errorf("%w: value %d appended to %q by T%d and T%d", ErrMalformed, o.Value, o.Key, c.h[w.txn].ID, t.ID)
				}
				c.writers[k] = writeRef{txn: i}
				lastIdx[o.Key] = j
			case Read:
			default:
				return fmt.Errorf("%w: T%d has an op of invalid kind %d", ErrMalformed, t.ID, o.Kind)
			}
		}
		for key, j := range lastIdx {
			c.writers[kv{key, t.Ops[j].Value}] = writeRef{txn: i, last: true}
		}
	}
	return nil
}

// counted reports whether transaction i's reads count as observations:
// committed ones, and unknown ones (which may have committed).
func (c *checker) counted(i int) bool { return c.h[i].Status != Aborted }

// internal checks each transaction against itself (a read must show the
// transaction's own earlier appends at its end, after the same external
// prefix as its earlier reads) and records its external observations.
func (c *checker) internal() {
	c.ext = make([]map[string][]int, len(c.h))
	for i, t := range c.h {
		if !c.counted(i) {
			continue
		}
		own := make(map[string][]int)
		for _, o := range t.Ops {
			if o.Kind == Append {
				own[o.Key] = append(own[o.Key], o.Value)
				continue
			}
			mine := own[o.Key]
			n := len(o.List) - len(mine)
			if n < 0 || !slices.Equal(o.List[n:], mine) {
				c.report(Internal, o.Key, []int{i}, "read %v does not end with its own appends %v", o.List, mine)
				continue
			}
			prev, seen := c.ext[i][o.Key]
			if !seen {
				if c.ext[i] == nil {
					c.ext[i] = make(map[string][]int)
				}
				c.ext[i][o.Key] = o.List[:n:n]
			} else if !slices.Equal(prev, o.List[:n]) {
				c.report(Internal, o.Key, []int{i}, "read %v after reading %v and appending %v", o.List, prev, mine)
			}
		}
	}
}

// inferOrders takes each key's version order from its longest observed
// list; every other observation must be a prefix of it.
func (c *checker) inferOrders() {
	c.order = make(map[string][]int)
	c.badOrder = make(map[string]bool)
	longestBy := make(map[string]int) // key -> the transaction that read the longest list
	c.eachRead(func(i int, o Op) {
		if _, seen := longestBy[o.Key]; !seen || len(o.List) > len(c.order[o.Key]) {
			c.order[o.Key] = o.List
			longestBy[o.Key] = i
		}
	})
	c.eachRead(func(i int, o Op) {
		longest := c.order[o.Key]
		if len(o.List) <= len(longest) && slices.Equal(o.List, longest[:len(o.List)]) {
			return
		}
		if !c.badOrder[o.Key] { // one report per key is enough to explain it
			c.badOrder[o.Key] = true
			c.report(IncompatibleOrder, o.Key, []int{i, longestBy[o.Key]},
				"read %v is not a prefix of read %v", o.List, longest)
		}
	})
}

// eachRead calls fn for every read of a transaction that counts.
func (c *checker) eachRead(fn func(i int, o Op)) {
	for i, t := range c.h {
		if !c.counted(i) {
			continue
		}
		for _, o := range t.Ops {
			if o.Kind == Read {
				fn(i, o)
			}
		}
	}
}

// readAnomalies finds duplicate and garbage elements, reads of aborted
// writes (G1a) and reads of intermediate versions (G1b).
func (c *checker) readAnomalies() {
	type pair struct{ reader, writer int }
	g1a := make(map[pair]bool)
	c.eachRead(func(i int, o Op) {
		seen := make(map[int]bool, len(o.List))
		for _, v := range o.List {
			if seen[v] {
				c.report(DuplicateElements, o.Key, []int{i}, "read %v holds %d twice", o.List, v)
				break
			}
			seen[v] = true
			w, ok := c.writers[kv{o.Key, v}]
			switch {
			case !ok:
				c.report(GarbageRead, o.Key, []int{i}, "read %v holds %d, which no transaction appended", o.List, v)
			case c.h[w.txn].Status == Aborted && !g1a[pair{i, w.txn}]:
				g1a[pair{i, w.txn}] = true
				c.report(G1a, o.Key, []int{i, w.txn}, "read %v holds %d, appended by aborted T%d", o.List, v, c.h[w.txn].ID)
			}
		}
	})
	for i := range c.h {
		for key, ext := range c.ext[i] {
			if len(ext) == 0 {
				continue
			}
			v := ext[len(ext)-1]
			w, ok := c.writers[kv{key, v}]
			if ok && w.txn != i && !w.last && c.h[w.txn].Status != Aborted {
				c.report(G1b, key, []int{i, w.txn}, "read %v ends with %d, an intermediate append of T%d", ext, v, c.h[w.txn].ID)
			}
		}
	}
}

// writerOf returns the graph node that appended v to key, or -1.
func (c *checker) writerOf(key string, v int) int {
	if w, ok := c.writers[kv{key, v}]; ok && c.inGraph[w.txn] {
		return w.txn
	}
	return -1
}

// buildGraph makes the dependency graph. Nodes: committed transactions, and
// unknown ones whose writes were observed. Edges, per key with order
// v1 < v2 < ...:
//
//	ww  Ti -> Tj  Ti appended v_k and Tj appended v_k+1
//	wr  Ti -> Tj  Tj's external read ends with Ti's value
//	rw  Ti -> Tj  Ti's external read ends at v_k and Tj appended the next version
func (c *checker) buildGraph() *graph {
	c.inGraph = make([]bool, len(c.h))
	for i, t := range c.h {
		c.inGraph[i] = t.Status == Committed
	}
	for key, order := range c.order {
		for _, v := range order {
			if w, ok := c.writers[kv{key, v}]; ok && c.h[w.txn].Status == Unknown {
				c.inGraph[w.txn] = true
			}
		}
	}
	g := newGraph(c.h)
	keys := make([]string, 0, len(c.order))
	for key := range c.order {
		keys = append(keys, key)
	}
	sort.Strings(keys) // deterministic edge keys and reports
	for _, key := range keys {
		order := c.order[key]
		for k := 0; k+1 < len(order); k++ {
			a, b := c.writerOf(key, order[k]), c.writerOf(key, order[k+1])
			if a >= 0 && b >= 0 && a != b {
				g.add(a, b, WW, key)
			}
		}
	}
	for i := range c.h {
		if !c.inGraph[i] {
			continue
		}
		for key, ext := range c.ext[i] {
			c.readEdges(g, i, key, ext)
		}
	}
	return g
}

// readEdges adds the wr and rw edges of transaction i's external read of key.
func (c *checker) readEdges(g *graph, i int, key string, ext []int) {
	if c.badOrder[key] {
		return // no single order: the incompatibility is already reported
	}
	order := c.order[key]
	prev := -1
	if len(ext) > 0 {
		prev = c.writerOf(key, ext[len(ext)-1])
		if prev >= 0 && prev != i {
			g.add(prev, i, WR, key)
		}
	}
	// The version that overwrote what i saw: the next append by another
	// writer (appends of the same writer make one version).
	j := len(ext)
	for j < len(order) && prev >= 0 && c.writerOf(key, order[j]) == prev {
		j++
	}
	if j < len(order) {
		if next := c.writerOf(key, order[j]); next >= 0 && next != i {
			g.add(i, next, RW, key)
		}
	}
}

// realTimeEdges adds the real-time order between committed transactions
// with known bounds, transitively reduced so it costs O(n · concurrency)
// edges rather than O(n²): sweeping the events in time order, a "frontier"
// holds the finished transactions not yet known to precede another finished
// one. A starting transaction gets an edge from each frontier member; when
// it finishes, it replaces in the frontier those it had edges from (they
// reach later transactions through it).
func (c *checker) realTimeEdges(g *graph) {
	type event struct {
		at  int64
		end bool
		txn int
	}
	var evs []event
	for i, t := range c.h {
		if t.Status == Committed && t.Start != 0 && t.End != 0 {
			evs = append(evs, event{t.Start, false, i}, event{t.End, true, i})
		}
	}
	// Starts before ends at equal times: touching intervals are concurrent.
	sort.Slice(evs, func(a, b int) bool {
		if evs[a].at != evs[b].at {
			return evs[a].at < evs[b].at
		}
		return !evs[a].end && evs[b].end
	})
	frontier := make(map[int]bool)
	preds := make(map[int][]int)
	for _, e := range evs {
		if !e.end {
			for p := range frontier {
				g.add(p, e.txn, RT, "")
				preds[e.txn] = append(preds[e.txn], p)
			}
			continue
		}
		for _, p := range preds[e.txn] {
			delete(frontier, p)
		}
		delete(preds, e.txn)
		frontier[e.txn] = true
	}
}
