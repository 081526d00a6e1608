package txkvhttp

import (
	"bytes"
	"slices"
	"time"

	"github.com/txkv/txkv"
)

// lockTableLocked groups the rows of db.Locks() by target, ages them, and
// keeps the first MaxTargets, those with waiters first.
func (c *collector) lockTableLocked(now time.Time, rows []txkv.LockInfo) LockTable {
	var t LockTable
	seen := make(map[lockID]time.Time, min(len(rows), maxAged))
	var targets []LockTarget
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && sameTarget(&rows[i], &rows[j]) {
			j++
		}
		lt := LockTarget{Target: newTarget(rows[i].Key, rows[i].End, rows[i].Range),
			Holders: []LockEntry{}, Waiters: []LockEntry{}}
		for k := i; k < j; k++ {
			e := c.entryLocked(now, &rows[k], seen)
			if rows[k].Granted {
				lt.Holders = append(lt.Holders, e)
			} else {
				lt.Waiters = append(lt.Waiters, e)
			}
		}
		t.Holders += len(lt.Holders)
		t.Waiters += len(lt.Waiters)
		targets = append(targets, lt)
		i = j
	}
	c.mu.firstSeen = seen
	// Waiters first: the queues are what a reader came to see.
	slices.SortStableFunc(targets, func(a, b LockTarget) int {
		return boolOrder(len(a.Waiters) == 0, len(b.Waiters) == 0)
	})
	if len(targets) > MaxTargets {
		t.Omitted = len(targets) - MaxTargets
		targets = targets[:MaxTargets]
	}
	t.Targets = targets
	if t.Targets == nil {
		t.Targets = []LockTarget{}
	}
	return t
}

func sameTarget(a, b *txkv.LockInfo) bool {
	return a.Range == b.Range && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.End, b.End) &&
		(a.End == nil) == (b.End == nil)
}

// entryLocked makes a row's entry. A waiter's age and that of a lock
// granted after a wait come from Since; a lock granted at once has no time
// in txkv, so its age counts from when this collector first saw it.
func (c *collector) entryLocked(now time.Time, r *txkv.LockInfo, seen map[lockID]time.Time) LockEntry {
	e := LockEntry{Tx: r.TxID, Label: printable(r.Label), Mode: r.Mode.String()}
	if !r.Since.IsZero() {
		e.AgeMS = max(now.Sub(r.Since), 0).Milliseconds()
		return e
	}
	id := lockID{tx: r.TxID, key: string(r.Key), end: string(r.End), isRange: r.Range, mode: r.Mode, granted: r.Granted}
	first, ok := c.mu.firstSeen[id]
	if !ok {
		first = now
	}
	if len(seen) < maxAged {
		seen[id] = first
	}
	e.AgeMS, e.AgeAtLeast = max(now.Sub(first), 0).Milliseconds(), true
	return e
}

// graphLocked builds the wait-for graph and draws the current DB's latest
// deadlock over it.
func (c *collector) graphLocked(now time.Time, db *txkv.DB, rows []txkv.LockInfo) Graph {
	labels := make(map[uint64]string)
	for _, r := range rows {
		if r.Label != "" {
			labels[r.TxID] = printable(r.Label)
		}
	}
	g := Graph{Nodes: []GraphNode{}, Edges: []GraphEdge{}}
	nodes := make(map[uint64]*GraphNode)
	node := func(tx uint64) *GraphNode {
		if n, ok := nodes[tx]; ok {
			return n
		}
		n := &GraphNode{Tx: tx, Label: labels[tx]}
		nodes[tx] = n
		return n
	}
	for _, e := range db.WaitForGraph() {
		node(e.Waiter).Waiting = true
		node(e.Holder)
		g.Edges = append(g.Edges, GraphEdge{Waiter: e.Waiter, Holder: e.Holder, Soft: e.Soft, Mode: e.Mode.String(),
			Target: newTarget(e.Key, e.End, e.Range), Live: true, WaitMS: max(now.Sub(e.Since), 0).Milliseconds()})
	}
	if d := c.latestLocked(db); d != nil {
		dl := d.Deadlock // a copy: the list shifts as deadlocks arrive, a snapshot must not
		g.Deadlock = &dl
		overlay(&g, d, node)
	}
	for _, n := range nodes {
		g.Nodes = append(g.Nodes, *n)
	}
	slices.SortFunc(g.Nodes, func(a, b GraphNode) int { return cmpU64(a.Tx, b.Tx) })
	return g
}

// overlay marks the deadlock's cycle on the graph: its edges (added when
// no longer live), its nodes and its victim.
func overlay(g *Graph, d *captured, node func(uint64) *GraphNode) {
	for _, ce := range d.Cycle {
		w, h := node(ce.Waiter), node(ce.Holder)
		w.InCycle, h.InCycle = true, true
		if w.Label == "" {
			w.Label = d.Labels[ce.Waiter]
		}
		i := slices.IndexFunc(g.Edges, func(e GraphEdge) bool { return e.Waiter == ce.Waiter && e.Holder == ce.Holder })
		if i >= 0 {
			g.Edges[i].Cycle = true
			continue
		}
		g.Edges = append(g.Edges, GraphEdge{Waiter: ce.Waiter, Holder: ce.Holder, Soft: ce.Soft, Mode: ce.Mode,
			Target: ce.Target, Cycle: true})
	}
	node(d.Victim).Victim = true
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// latestLocked is the latest deadlock captured in db, or nil.
func (c *collector) latestLocked(db *txkv.DB) *captured {
	if len(c.mu.deadlocks) == 0 || c.mu.deadlocks[0].db != db {
		return nil
	}
	return &c.mu.deadlocks[0]
}

// poll captures the deadlocks found since the last poll (db.RecentDeadlocks
// keeps the last 32): the event stream calls it several times between two
// snapshots, so that even a storm is listed deadlock by deadlock.
func (c *collector) poll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pollLocked()
}

// pollLocked captures the deadlocks found since the last one captured. The
// first poll after watching began captures only the latest one found
// before, marked as such.
func (c *collector) pollLocked() {
	db := c.mu.db
	recs := db.RecentDeadlocks(c.mu.lastSeq)
	if !c.mu.watching {
		c.mu.watching, c.mu.missed = true, 0
		if n := len(recs); n > 0 {
			c.captureLocked(db, recs[n-1], true)
			c.mu.lastSeq = recs[n-1].Seq
		}
		return
	}
	if len(recs) == 0 {
		return
	}
	c.mu.missed += recs[0].Seq - c.mu.lastSeq - 1 // dropped by the DB before this poll
	for _, r := range recs {
		c.captureLocked(db, r, false)
	}
	c.mu.lastSeq = recs[len(recs)-1].Seq
}

func (c *collector) captureLocked(db *txkv.DB, r txkv.DeadlockRecord, before bool) {
	c.mu.seq++
	d := r.Err
	dl := Deadlock{Seq: c.mu.seq, Time: r.Time, Before: before, Victim: d.Victim, Labels: printableLabels(d.Labels),
		Cycle: make([]CycleEdge, 0, len(d.Cycle)), Message: d.Error()}
	for _, e := range d.Cycle {
		dl.Cycle = append(dl.Cycle, CycleEdge{Waiter: e.Waiter, Holder: e.Holder, Mode: e.Mode.String(),
			HolderMode: e.HolderMode.String(), Soft: e.Soft, Upgrade: e.Upgrade, Target: newTarget(e.Key, e.End, e.Range)})
	}
	c.mu.deadlocks = slices.Insert(c.mu.deadlocks, 0, captured{Deadlock: dl, db: db})
	if len(c.mu.deadlocks) > MaxDeadlocks {
		c.mu.deadlocks = c.mu.deadlocks[:MaxDeadlocks]
	}
}

func (c *collector) deadlockListLocked(total uint64) DeadlockList {
	l := DeadlockList{Total: total, Recent: make([]Deadlock, 0, len(c.mu.deadlocks))}
	l.Missed = c.mu.missed
	for _, d := range c.mu.deadlocks {
		l.Recent = append(l.Recent, d.Deadlock)
	}
	return l
}

// printableLabels copies labels made printable (see printable).
func printableLabels(m map[uint64]string) map[uint64]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[uint64]string, len(m))
	for id, l := range m {
		out[id] = printable(l)
	}
	return out
}
