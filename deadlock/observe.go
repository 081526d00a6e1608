package deadlock

// EachWaiterLocked calls fn for every waiting transaction, in ascending
// order of ID, with what it waits on and its out-edges (sorted by holder).
// fn runs with the graph lock held: it must be quick, must not retain out
// and must not call the graph. Introspection (lockmgr's WaitForGraph)
// uses it to copy the graph with the waiters' targets in one atomic step.
func (g *Graph[R]) EachWaiterLocked(fn func(waiter uint64, on R, out []Edge)) {
	for _, id := range g.sortedIDsLocked() {
		n := g.mu.nodes[id]
		fn(id, n.on, n.out)
	}
}
