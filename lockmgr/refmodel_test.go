package lockmgr

import (
	"cmp"
	"slices"
)

// refModel is the deliberately simple reference for the differential test:
// one flat list of every request, every rule written as a brute-force scan
// of that list, and a brute-force cycle search over the full wait-for
// relation (an edge to EVERY conflicting holder and request ahead, where
// the Manager keeps only enough of them). No sharding, no queues, no
// caches, no goroutines.
type refModel struct {
	reqs []*refReq
	seq  uint64
}

type refReq struct {
	txn      uint64
	key, end string
	endNil   bool // range without upper bound
	isRange  bool
	mode     Mode
	granted  bool
	upgrade  bool
	seq      uint64 // arrival
	pos      uint64 // queue position: seq<<posShift, or just ahead of a request it was moved before
}

// touches: do the targets of a and b share a key?
func refOverlap(a, b *refReq) bool {
	switch {
	case !a.isRange && !b.isRange:
		return a.key == b.key
	case !a.isRange:
		return refIn(a.key, b)
	case !b.isRange:
		return refIn(b.key, a)
	}
	return (b.endNil || a.key < b.end) && (a.endNil || b.key < a.end)
}

func refIn(k string, r *refReq) bool { return k >= r.key && (r.endNil || k < r.end) }

// refCovers: does granted a make request b redundant (same txn)?
func refCovers(a, b *refReq) bool {
	if !a.mode.covers(b.mode) {
		return false
	}
	switch {
	case !a.isRange && !b.isRange:
		return a.key == b.key
	case a.isRange && !b.isRange:
		return refIn(b.key, a)
	case a.isRange && b.isRange:
		return a.key <= b.key && (a.endNil || (!b.endNil && b.end <= a.end))
	}
	return false
}

// passes: a goes ahead of b because a's transaction already holds a
// granted lock overlapping b's target.
func (m *refModel) passes(a, b *refReq) bool {
	for _, g := range m.reqs {
		if g.granted && g.txn == a.txn && refOverlap(g, b) {
			return true
		}
	}
	return false
}

// ahead: waiting a is queued ahead of b - a passes b and b does not pass
// a, or else a arrived first.
func (m *refModel) ahead(a, b *refReq) bool {
	if pa, pb := m.passes(a, b), m.passes(b, a); pa != pb {
		return pa
	}
	if a.pos != b.pos {
		return a.pos < b.pos
	}
	return a.seq < b.seq
}

// blockers lists the transactions w waits for: hard (granted) and soft
// (waiting ahead), conflicting and overlapping, other transactions.
func (m *refModel) blockers(w *refReq) (hard, soft []uint64) {
	for _, x := range m.reqs {
		if x == w || x.txn == w.txn || !Conflicts(x.mode, w.mode) || !refOverlap(x, w) {
			continue
		}
		if x.granted {
			hard = append(hard, x.txn)
		} else if m.ahead(x, w) {
			soft = append(soft, x.txn)
		}
	}
	return hard, soft
}

// acquire returns "ok", "na" or "waiting".
func (m *refModel) acquire(r *refReq, p WaitPolicy) string {
	for _, x := range m.reqs {
		if x.txn == r.txn && x.granted && refCovers(x, r) {
			return "ok"
		}
	}
	for _, x := range m.reqs {
		if x.txn == r.txn && x.granted && refOverlap(x, r) {
			r.upgrade = true
		}
	}
	r.seq, r.pos = ^uint64(0), ^uint64(0)
	if h, s := m.blockers(r); len(h)+len(s) == 0 {
		m.grant(r)
		return "ok"
	}
	if p != Block {
		return "na"
	}
	m.seq++
	r.seq, r.pos = m.seq, m.seq<<posShift
	m.reqs = append(m.reqs, r)
	return "waiting"
}

// grant makes r granted, folding it into an identical target the txn holds.
func (m *refModel) grant(r *refReq) {
	m.reqs = slices.DeleteFunc(m.reqs, func(x *refReq) bool { return x == r })
	r.granted = true
	for _, x := range m.reqs {
		if x.txn == r.txn && x.granted && x.isRange == r.isRange && x.key == r.key && x.end == r.end && x.endNil == r.endNil {
			x.mode = max(x.mode, r.mode)
			return
		}
	}
	m.reqs = append(m.reqs, r)
}

// settle grants every waiter with no blockers (in arrival order; any order
// grants the same set, since a request ahead blocks whether it still waits
// or was just granted); it returns the transactions granted.
func (m *refModel) settle() []uint64 {
	var granted []uint64
	for _, w := range m.waitingSorted() {
		if h, s := m.blockers(w); len(h)+len(s) == 0 {
			m.grant(w)
			granted = append(granted, w.txn)
		}
	}
	return granted
}

func (m *refModel) waitingSorted() []*refReq {
	var ws []*refReq
	for _, x := range m.reqs {
		if !x.granted {
			ws = append(ws, x)
		}
	}
	slices.SortFunc(ws, func(a, b *refReq) int { return cmp.Compare(a.seq, b.seq) })
	return ws
}

func (m *refModel) waitingOf(txn uint64) *refReq {
	for _, x := range m.reqs {
		if x.txn == txn && !x.granted {
			return x
		}
	}
	return nil
}

func (m *refModel) release(txn uint64) []uint64 {
	m.reqs = slices.DeleteFunc(m.reqs, func(x *refReq) bool { return x.txn == txn && x.granted })
	return m.settle()
}

// remove drops txn's waiting request (cancel or deadlock victim).
func (m *refModel) remove(txn uint64) []uint64 {
	m.reqs = slices.DeleteFunc(m.reqs, func(x *refReq) bool { return x.txn == txn && !x.granted })
	return m.settle()
}

// onCycle reports whether txn can reach itself in the full wait-for graph.
func (m *refModel) onCycle(txn uint64) bool {
	seen := map[uint64]bool{}
	var visit func(t uint64) bool
	visit = func(t uint64) bool {
		w := m.waitingOf(t)
		if w == nil {
			return false
		}
		h, s := m.blockers(w)
		for _, n := range append(h, s...) {
			if n == txn {
				return true
			}
			if !seen[n] {
				seen[n] = true
				if visit(n) {
					return true
				}
			}
		}
		return false
	}
	return visit(txn)
}

func (m *refModel) hasCycle() bool {
	for _, x := range m.reqs {
		if !x.granted && m.onCycle(x.txn) {
			return true
		}
	}
	return false
}

// locks renders the model like Manager.Locks (minus times and labels).
func (m *refModel) locks() []LockInfo {
	rs := slices.Clone(m.reqs)
	slices.SortFunc(rs, func(a, b *refReq) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		if c := boolOrder(a.isRange, b.isRange); c != 0 {
			return c
		}
		if c := compareEnd(refEnd(a), refEnd(b)); c != 0 {
			return c
		}
		if c := boolOrder(!a.granted, !b.granted); c != 0 {
			return c
		}
		if a.granted {
			return cmp.Compare(a.txn, b.txn)
		}
		// Waiters on one target: upgrades first, then arrival (passes
		// reduces to the upgrade flag when the targets are the same).
		if c := boolOrder(!a.upgrade, !b.upgrade); c != 0 {
			return c
		}
		if c := cmp.Compare(a.pos, b.pos); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	out := make([]LockInfo, len(rs))
	for i, r := range rs {
		out[i] = LockInfo{TxID: r.txn, Key: []byte(r.key), End: refEnd(r), Range: r.isRange, Mode: r.mode, Granted: r.granted}
	}
	return out
}

func refEnd(r *refReq) []byte {
	if !r.isRange || r.endNil {
		return nil
	}
	return []byte(r.end)
}
