package deadlock

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// DOTOptions customises WriteDOT. A nil *DOTOptions uses the defaults.
type DOTOptions[R any] struct {
	// Name is the graph's name; default "waitfor".
	Name string
	// NodeLabel labels a transaction; default "txn N". It is called after
	// the graph lock is released, so it may take the caller's locks.
	NodeLabel func(txn uint64) string
	// WaitLabel labels a waiter's out-edges with what it waits on; default
	// none. It is called with the graph lock held: it must not block.
	WaitLabel func(on R) string
}

type dotEdge struct {
	Edge
	label string
}

// WriteDOT writes the graph in Graphviz DOT: one box per transaction, a
// solid arrow per hard edge and a dashed arrow per soft edge, labelled with
// what the waiter waits on. Render with `dot -Tsvg`.
func (g *Graph[R]) WriteDOT(w io.Writer, o *DOTOptions[R]) error {
	if o == nil {
		o = &DOTOptions[R]{}
	}
	edges, txns := g.dotSnapshot(o.WaitLabel)
	name := o.Name
	if name == "" {
		name = "waitfor"
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "digraph %s {\n", strconv.Quote(name))
	fmt.Fprintf(bw, "  rankdir=LR;\n  node [shape=box];\n")
	for _, id := range txns {
		label := "txn " + strconv.FormatUint(id, 10)
		if o.NodeLabel != nil {
			label = o.NodeLabel(id)
		}
		fmt.Fprintf(bw, "  t%d [label=%s];\n", id, strconv.Quote(label))
	}
	for _, e := range edges {
		attrs := ""
		if e.label != "" {
			attrs = "label=" + strconv.Quote(e.label)
		}
		if e.Soft {
			if attrs != "" {
				attrs += ", "
			}
			attrs += "style=dashed"
		}
		if attrs != "" {
			attrs = " [" + attrs + "]"
		}
		fmt.Fprintf(bw, "  t%d -> t%d%s;\n", e.Waiter, e.Holder, attrs)
	}
	fmt.Fprintf(bw, "}\n")
	return bw.Flush()
}

// dotSnapshot copies the edges (with labels) and the sorted set of
// transactions that appear in them, under the graph lock.
func (g *Graph[R]) dotSnapshot(waitLabel func(R) string) ([]dotEdge, []uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var edges []dotEdge
	seen := make(map[uint64]bool)
	var txns []uint64
	add := func(id uint64) {
		if !seen[id] {
			seen[id] = true
			txns = append(txns, id)
		}
	}
	for _, id := range g.sortedIDsLocked() {
		n := g.mu.nodes[id]
		label := ""
		if waitLabel != nil {
			label = waitLabel(n.on)
		}
		add(id)
		for _, e := range n.out {
			add(e.Holder)
			edges = append(edges, dotEdge{Edge: e, label: label})
		}
	}
	sortUint64(txns)
	return edges, txns
}
