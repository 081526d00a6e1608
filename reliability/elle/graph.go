package elle

import "strings"

// DepKind is a set of dependency kinds (Adya's direct serialization graph
// edges); an edge between two transactions may carry several.
type DepKind uint8

// The dependency kinds.
const (
	WW DepKind = 1 << iota // write-write: Tj appended the version after Ti's
	WR                     // write-read: Tj read the version Ti appended
	RW                     // read-write (anti-dependency): Tj overwrote the version Ti read
	RT                     // real time: Ti ended before Tj started (CheckOptions.RealTime)
)

var allKinds = []DepKind{WW, WR, RW, RT}

func (k DepKind) String() string {
	var parts []string
	for _, x := range allKinds {
		if k&x != 0 {
			parts = append(parts, [...]string{"ww", "wr", "rw", "rt"}[bit(x)])
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "+")
}

func bit(k DepKind) int {
	switch k {
	case WW:
		return 0
	case WR:
		return 1
	case RW:
		return 2
	}
	return 3
}

// Step is one edge of a reported cycle, between transaction IDs.
type Step struct {
	From, To int
	Kind     DepKind
	Key      string
}

// edge is a dependency From -> to with the kinds it carries and, for each
// kind, one key that gave rise to it (for the explanation).
type edge struct {
	to    int
	kinds DepKind
	keys  [4]string
}

// graph is an adjacency list over a dense range of node numbers. The whole
// dependency graph uses history indexes as node numbers; classify builds a
// small graph of one SCC with local numbers, so its work is proportional
// to the SCC, not to the history.
type graph struct {
	ids   []int // node -> transaction ID
	adj   [][]edge
	index map[[2]int]int // (from, to) -> position in adj[from]
}

func newGraph(h []Txn) *graph {
	ids := make([]int, len(h))
	for i, t := range h {
		ids[i] = t.ID
	}
	return &graph{ids: ids, adj: make([][]edge, len(h)), index: make(map[[2]int]int)}
}

// add records kind on the edge from -> to (self-loops are never added).
func (g *graph) add(from, to int, kind DepKind, key string) {
	if from == to {
		return
	}
	p, ok := g.index[[2]int{from, to}]
	if !ok {
		p = len(g.adj[from])
		g.index[[2]int{from, to}] = p
		g.adj[from] = append(g.adj[from], edge{to: to})
	}
	e := &g.adj[from][p]
	if e.kinds&kind == 0 {
		e.kinds |= kind
		e.keys[bit(kind)] = key
	}
}

func (g *graph) counts() map[DepKind]int {
	m := make(map[DepKind]int)
	for _, es := range g.adj {
		for _, e := range es {
			for _, k := range allKinds {
				if e.kinds&k != 0 {
					m[k]++
				}
			}
		}
	}
	return m
}

// sccs returns the strongly connected components with more than one node,
// over every edge kind.
func (g *graph) sccs() [][]int { return g.tarjan(WW | WR | RW | RT) }

// tarjan is Tarjan's algorithm (1972), iterative so that long dependency
// chains cannot overflow the stack; it returns the components of size > 1
// of the subgraph of edges carrying a kind in mask.
func (g *graph) tarjan(mask DepKind) [][]int {
	n := len(g.adj)
	index := make([]int, n) // 0: unvisited; else visit order + 1
	low := make([]int, n)
	onStack := make([]bool, n)
	var stack []int
	var out [][]int
	type frame struct{ v, next int }
	counter := 0
	for root := range n {
		if index[root] != 0 {
			continue
		}
		call := []frame{{v: root}}
		counter++
		index[root], low[root] = counter, counter
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.next < len(g.adj[f.v]) {
				e := g.adj[f.v][f.next]
				f.next++
				if e.kinds&mask == 0 {
					continue
				}
				switch {
				case index[e.to] == 0:
					counter++
					index[e.to], low[e.to] = counter, counter
					stack = append(stack, e.to)
					onStack[e.to] = true
					call = append(call, frame{v: e.to})
				case onStack[e.to]:
					low[f.v] = min(low[f.v], index[e.to])
				}
				continue
			}
			v := f.v
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] != index[v] {
				continue
			}
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if len(comp) > 1 {
				out = append(out, comp)
			}
		}
	}
	return out
}

// restrict returns the subgraph induced by nodes, renumbered 0..len-1.
func (g *graph) restrict(nodes []int) *graph {
	local := make(map[int]int, len(nodes))
	for i, v := range nodes {
		local[v] = i
	}
	s := &graph{ids: make([]int, len(nodes)), adj: make([][]edge, len(nodes))}
	for i, v := range nodes {
		s.ids[i] = g.ids[v]
		for _, e := range g.adj[v] {
			if j, ok := local[e.to]; ok {
				e.to = j
				s.adj[i] = append(s.adj[i], e)
			}
		}
	}
	return s
}

// classify reports one cyclic SCC under the most severe class it contains:
// a cycle of ww edges alone is G0; else one of ww and wr edges is G1c; else
// a cycle with exactly one rw edge is G-single; else every cycle has two or
// more rw edges: G2-item. Each step searches for the class's cycles only, so
// the reported cycle is a witness of the class. Real-time edges are used
// only when the component has no cycle without them; the class then gets
// the suffix "-realtime" (a strict-serializability violation).
func (g *graph) classify(nodes []int) Anomaly {
	s := g.restrict(nodes)
	var extra DepKind
	suffix := AnomalyKind("")
	if len(s.tarjan(WW|WR|RW)) == 0 {
		extra, suffix = RT, "-realtime"
	}
	for _, c := range []struct {
		kind AnomalyKind
		mask DepKind
	}{{G0, WW}, {G1c, WW | WR}} {
		if comps := s.tarjan(c.mask | extra); len(comps) > 0 {
			sub := s.restrict(comps[0])
			return sub.anomaly(c.kind+suffix, sub.cycleThrough(0, c.mask|extra), c.mask|extra, -1)
		}
	}
	if cyc, ok := s.singleRW(WW | WR | extra); ok {
		return s.anomaly(GSingle+suffix, cyc, WW|WR|extra, 0)
	}
	return s.anomaly(G2Item+suffix, s.cycleThrough(0, WW|WR|RW|extra), WW|WR|RW|extra, -1)
}

// singleRW looks for a cycle a -rw-> b ~> a whose path b ~> a uses only
// edges in mask (never rw). It returns the cycle starting at a. One
// breadth-first search per rw target answers for every rw edge into it.
func (g *graph) singleRW(mask DepKind) ([]int, bool) {
	n := len(g.adj)
	rwPreds := make([][]int, n)
	for a, es := range g.adj {
		for _, e := range es {
			if e.kinds&RW != 0 {
				rwPreds[e.to] = append(rwPreds[e.to], a)
			}
		}
	}
	parent := make([]int, n)
	for b := range n {
		if len(rwPreds[b]) == 0 {
			continue
		}
		g.bfs(b, mask, parent)
		for _, a := range rwPreds[b] {
			if parent[a] >= 0 {
				path := g.path(b, a, parent) // b ... a
				return append([]int{a}, path[:len(path)-1]...), true
			}
		}
	}
	return nil, false
}

// bfs fills parent with a breadth-first tree from start over edges in mask
// (parent[start] = start, unreached nodes -1) and returns the nodes reached,
// in order of distance from start.
func (g *graph) bfs(start int, mask DepKind, parent []int) []int {
	for i := range parent {
		parent[i] = -1
	}
	parent[start] = start
	queue := []int{start}
	for head := 0; head < len(queue); head++ {
		for _, e := range g.adj[queue[head]] {
			if e.kinds&mask != 0 && parent[e.to] < 0 {
				parent[e.to] = queue[head]
				queue = append(queue, e.to)
			}
		}
	}
	return queue
}

// path returns the tree path start ... end from bfs's parent array.
func (g *graph) path(start, end int, parent []int) []int {
	var rev []int
	for v := end; v != start; v = parent[v] {
		rev = append(rev, v)
	}
	rev = append(rev, start)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// cycleThrough returns a shortest cycle through start over edges in mask,
// as its nodes in order (start first), or nil if there is none: the first
// node in breadth-first order with an edge back to start closes it.
func (g *graph) cycleThrough(start int, mask DepKind) []int {
	parent := make([]int, len(g.adj))
	for _, u := range g.bfs(start, mask, parent) {
		for _, e := range g.adj[u] {
			if e.to == start && e.kinds&mask != 0 {
				return g.path(start, u, parent)
			}
		}
	}
	return nil
}

// anomaly describes cycle (nodes in order, closing on the first) as Steps.
// Each hop takes the least severe kind in mask (ww, wr, rt, then rw),
// except hop rwHop (if >= 0), which is shown as its rw edge.
func (g *graph) anomaly(kind AnomalyKind, cycle []int, mask DepKind, rwHop int) Anomaly {
	a := Anomaly{Kind: kind}
	for i, u := range cycle {
		v := cycle[(i+1)%len(cycle)]
		for _, e := range g.adj[u] {
			if e.to != v {
				continue
			}
			m := mask
			if i == rwHop {
				m = RW
			}
			for _, k := range []DepKind{WW, WR, RT, RW} {
				if e.kinds&m&k != 0 {
					a.Cycle = append(a.Cycle, Step{From: g.ids[u], To: g.ids[v], Kind: k, Key: e.keys[bit(k)]})
					break
				}
			}
			break
		}
		a.Txns = append(a.Txns, g.ids[u])
	}
	return a
}
