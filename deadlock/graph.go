package deadlock

import (
	"cmp"
	"slices"
	"sync"
)

// Graph is a wait-for graph. Nodes are transaction IDs; a transaction that is
// waiting has a node carrying what it waits on (R, opaque to this package, for
// example the lock request) and its out-edges. A transaction that only holds
// locks has no node: it is a sink that edges may point at.
//
// A waiter waits on one thing at a time, so SetWaits replaces all of a
// waiter's out-edges at once; the owner of the lock table calls it whenever
// the queue the waiter sits in changes, which keeps the graph an exact image
// of the table.
//
// The methods ending in Locked must be called between Lock and Unlock, so
// that a caller can update several waiters and search in one atomic step.
// Lock order for callers: their own locks first, then the Graph.
type Graph[R any] struct {
	// mu protects every field below; see Lock.
	mu struct {
		sync.Mutex
		nodes map[uint64]*node[R] // waiting transactions
		indeg map[uint64]int      // number of edges pointing at a transaction
		edges int                 // total number of edges
		gen   uint64              // DFS visit stamp, bumped per search
		stack []frame[R]          // DFS scratch, reused across searches
		peak  int                 // most nodes since the maps were made (see RemoveLocked)
	}
}

// shrinkAbove is the peak number of waiters after which the graph's maps
// are rebuilt once it is empty again: a Go map keeps the buckets of its
// largest size, so one burst of waiters would otherwise pin them forever.
const shrinkAbove = 1024

type node[R any] struct {
	id      uint64
	on      R
	out     []Edge // sorted by Holder, no duplicates, no self-edges
	mark    uint64 // == Graph.mu.gen when visited by the current search
	onStack bool   // on the DFS path (FindAnyCycle only)
}

type frame[R any] struct {
	n *node[R]
	i int // next out-edge to follow; the edge taken is out[i-1]
}

// NewGraph returns an empty graph.
func NewGraph[R any]() *Graph[R] {
	g := &Graph[R]{}
	g.mu.nodes = make(map[uint64]*node[R])
	g.mu.indeg = make(map[uint64]int)
	return g
}

// Lock acquires the graph's mutex for a sequence of *Locked calls.
func (g *Graph[R]) Lock() { g.mu.Lock() }

// Unlock releases the mutex taken by Lock.
func (g *Graph[R]) Unlock() { g.mu.Unlock() }

// SetWaits is SetWaitsLocked under the graph's own lock.
func (g *Graph[R]) SetWaits(waiter uint64, on R, edges []Edge) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.SetWaitsLocked(waiter, on, edges)
}

// SetWaitsLocked records that waiter waits on `on` for the holders named by
// edges, replacing any previous out-edges of waiter. The Waiter field of each
// edge is ignored (waiter is used); self-edges are dropped; when the same
// holder appears twice, a hard edge wins over a soft one. The slice is not
// retained.
func (g *Graph[R]) SetWaitsLocked(waiter uint64, on R, edges []Edge) {
	n := g.mu.nodes[waiter]
	if n == nil {
		n = &node[R]{id: waiter}
		g.mu.nodes[waiter] = n
		g.mu.peak = max(g.mu.peak, len(g.mu.nodes))
	}
	g.dropOutLocked(n)
	n.on = on
	for _, e := range edges {
		if e.Holder != waiter {
			n.out = append(n.out, Edge{Waiter: waiter, Holder: e.Holder, Soft: e.Soft})
		}
	}
	// Sort by holder, hard (Soft=false) first, then keep the first of each
	// holder: a transaction both holding and queued ahead is a hard blocker.
	slices.SortFunc(n.out, func(a, b Edge) int {
		if c := cmp.Compare(a.Holder, b.Holder); c != 0 {
			return c
		}
		return boolCmp(a.Soft, b.Soft)
	})
	n.out = slices.CompactFunc(n.out, func(a, b Edge) bool { return a.Holder == b.Holder })
	for _, e := range n.out {
		g.mu.indeg[e.Holder]++
	}
	g.mu.edges += len(n.out)
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// dropOutLocked removes n's out-edges and their in-degree counts.
func (g *Graph[R]) dropOutLocked(n *node[R]) {
	for _, e := range n.out {
		if c := g.mu.indeg[e.Holder] - 1; c > 0 {
			g.mu.indeg[e.Holder] = c
		} else {
			delete(g.mu.indeg, e.Holder)
		}
	}
	g.mu.edges -= len(n.out)
	n.out = n.out[:0]
}

// Remove is RemoveLocked under the graph's own lock.
func (g *Graph[R]) Remove(waiter uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.RemoveLocked(waiter)
}

// RemoveLocked forgets that waiter waits (it was granted, timed out, was
// cancelled or aborted). Edges of other waiters pointing at it stay: they are
// the owner's to update. It reports whether waiter had a node. When the
// last waiter of a large peak leaves, the maps are rebuilt small.
func (g *Graph[R]) RemoveLocked(waiter uint64) bool {
	n := g.mu.nodes[waiter]
	if n == nil {
		return false
	}
	g.dropOutLocked(n)
	delete(g.mu.nodes, waiter)
	if len(g.mu.nodes) == 0 && g.mu.peak > shrinkAbove {
		g.mu.nodes = make(map[uint64]*node[R])
		g.mu.indeg = make(map[uint64]int)
		g.mu.stack, g.mu.peak = nil, 0
	}
	return true
}

// WaitingOnLocked returns what waiter waits on, if it waits.
func (g *Graph[R]) WaitingOnLocked(waiter uint64) (on R, ok bool) {
	if n := g.mu.nodes[waiter]; n != nil {
		return n.on, true
	}
	return on, false
}

// WaitingOn is WaitingOnLocked under the graph's own lock.
func (g *Graph[R]) WaitingOn(waiter uint64) (R, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.WaitingOnLocked(waiter)
}

// OutLocked returns waiter's out-edges sorted by holder. The slice is the
// graph's own: read it only while the lock is held.
func (g *Graph[R]) OutLocked(waiter uint64) []Edge {
	if n := g.mu.nodes[waiter]; n != nil {
		return n.out
	}
	return nil
}

// HasEdgeLocked reports whether the graph has an edge from e.Waiter to
// e.Holder (of either kind).
func (g *Graph[R]) HasEdgeLocked(e Edge) bool {
	n := g.mu.nodes[e.Waiter]
	if n == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(n.out, e.Holder, func(x Edge, h uint64) int {
		return cmp.Compare(x.Holder, h)
	})
	return found
}

// Len returns the number of waiting transactions and of edges.
func (g *Graph[R]) Len() (waiters, edges int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.mu.nodes), g.mu.edges
}

// Edges returns every edge, sorted by waiter then holder.
func (g *Graph[R]) Edges() []Edge {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.edgesLocked()
}

func (g *Graph[R]) edgesLocked() []Edge {
	out := make([]Edge, 0, g.mu.edges)
	for _, id := range g.sortedIDsLocked() {
		out = append(out, g.mu.nodes[id].out...)
	}
	return out
}

func (g *Graph[R]) sortedIDsLocked() []uint64 {
	ids := make([]uint64, 0, len(g.mu.nodes))
	for id := range g.mu.nodes {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// FindCycle is FindCycleLocked under the graph's own lock.
func (g *Graph[R]) FindCycle(from uint64) []Edge {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.FindCycleLocked(from)
}

// FindCycleLocked returns a cycle through from, as the list of edges
// from -> ... -> from, or nil if there is none. It is a depth-first search
// that visits every waiting transaction at most once: O(V+E). A transaction
// nobody waits for cannot be on a cycle, so the common case - a new waiter at
// the tail of a queue, holding nothing anyone wants - is answered in O(1).
func (g *Graph[R]) FindCycleLocked(from uint64) []Edge {
	start := g.mu.nodes[from]
	if start == nil || g.mu.indeg[from] == 0 {
		return nil
	}
	g.mu.gen++
	start.mark = g.mu.gen
	stack := append(g.mu.stack[:0], frame[R]{n: start})
	defer func() { g.mu.stack = stack[:0] }()
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.i == len(f.n.out) {
			stack = stack[:len(stack)-1]
			continue
		}
		e := f.n.out[f.i]
		f.i++
		if e.Holder == from {
			return pathEdges(stack)
		}
		next := g.mu.nodes[e.Holder]
		if next == nil || next.mark == g.mu.gen {
			continue // a holder that waits for nothing, or already explored
		}
		next.mark = g.mu.gen
		stack = append(stack, frame[R]{n: next})
	}
	return nil
}

// pathEdges returns the edge taken out of every frame of the DFS path.
func pathEdges[R any](stack []frame[R]) []Edge {
	cycle := make([]Edge, len(stack))
	for i, f := range stack {
		cycle[i] = f.n.out[f.i-1]
	}
	return cycle
}

// FindAnyCycle is FindAnyCycleLocked under the graph's own lock.
func (g *Graph[R]) FindAnyCycle() []Edge {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.FindAnyCycleLocked()
}

// FindAnyCycleLocked returns some cycle of the graph, or nil. Roots are tried
// in ascending ID order, so the answer is deterministic. Used by periodic
// sweeps, which have no "new waiter" to start from.
func (g *Graph[R]) FindAnyCycleLocked() []Edge {
	g.mu.gen++
	for _, id := range g.sortedIDsLocked() {
		root := g.mu.nodes[id]
		if root.mark == g.mu.gen {
			continue
		}
		if c := g.cycleFromLocked(root); c != nil {
			return c
		}
	}
	return nil
}

// cycleFromLocked runs a coloured DFS from root: a back edge to a node still
// on the DFS path closes a cycle.
func (g *Graph[R]) cycleFromLocked(root *node[R]) []Edge {
	root.mark, root.onStack = g.mu.gen, true
	stack := append(g.mu.stack[:0], frame[R]{n: root})
	defer func() {
		for _, f := range stack {
			f.n.onStack = false
		}
		g.mu.stack = stack[:0]
	}()
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.i == len(f.n.out) {
			f.n.onStack = false
			stack = stack[:len(stack)-1]
			continue
		}
		e := f.n.out[f.i]
		f.i++
		next := g.mu.nodes[e.Holder]
		if next == nil {
			continue
		}
		if next.onStack {
			for i := range stack {
				if stack[i].n == next {
					return pathEdges(stack[i:])
				}
			}
		}
		if next.mark == g.mu.gen {
			continue
		}
		next.mark, next.onStack = g.mu.gen, true
		stack = append(stack, frame[R]{n: next})
	}
	return nil
}

func sortUint64(s []uint64) { slices.Sort(s) }
