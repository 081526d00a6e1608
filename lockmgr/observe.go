package lockmgr

import (
	"bytes"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// GraphEdge is one edge of the wait-for graph, as WaitForGraph reports it:
// Waiter waits for Holder — a holder of a conflicting lock, or (Soft) a
// conflicting request queued ahead of it — while asking for Mode on the
// target Key (a point), or [Key, End) when Range (End nil: unbounded).
// Since is when the waiter's request was queued.
type GraphEdge struct {
	Waiter, Holder uint64
	Soft           bool
	Key, End       []byte
	Range          bool
	Mode           Mode
	Since          time.Time
}

// WaitForGraph returns a consistent copy of the wait-for graph: every edge,
// ordered by waiter then holder, with private copies of the keys. It is
// what WriteDOT draws, as data. It takes the graph's mutex only (as
// WaitingOn does), for a time proportional to the number of edges.
func (m *Manager) WaitForGraph() []GraphEdge {
	var out []GraphEdge
	m.graph.Lock()
	m.graph.EachWaiterLocked(func(waiter uint64, r *request, edges []deadlock.Edge) {
		// While r is in the graph its head is alive, so its key is stable;
		// mode, the range bounds and queued never change.
		key, end, isRange := r.target()
		key, end = bytes.Clone(key), bytes.Clone(end)
		for _, e := range edges {
			out = append(out, GraphEdge{Waiter: waiter, Holder: e.Holder, Soft: e.Soft,
				Key: key, End: end, Range: isRange, Mode: r.mode, Since: r.queued})
		}
	})
	m.graph.Unlock()
	return out
}
