package lockmgr

import (
	"bytes"
	"cmp"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/txkv/txkv/deadlock"
)

// LockInfo describes one holder or waiter, like a row of PostgreSQL's
// pg_locks.
type LockInfo struct {
	TxID     uint64
	Label    string
	Key, End []byte
	Range    bool
	Mode     Mode
	Granted  bool
	// Since is when the wait began (waiters) or when the lock was granted
	// after a wait. It is zero for a lock granted at once: like PostgreSQL's
	// pg_locks.waitstart it times waits, and reading the clock would cost a
	// third of the uncontended acquire+release path.
	Since time.Time
}

// Locks returns a consistent snapshot of every holder and waiter, sorted by
// target — by start key (an open start first), a point before a range that
// starts at the same key, then by end (an open end last) — and, on one
// target, holders by txn ID before waiters in queue order. So a range
// [12-01, 12-08) lists after a point 11-30 and before a point 12-05: the
// rows read as a walk along the key space.
func (m *Manager) Locks() []LockInfo {
	type row struct {
		info LockInfo
		at   request // the queue-order fields, copied under the lock
	}
	var rows []row
	add := func(r *request) {
		key, end, isRange := r.target()
		rows = append(rows, row{LockInfo{TxID: r.txn, Key: bytes.Clone(key), End: bytes.Clone(end), Range: isRange,
			Mode: r.mode, Granted: r.state == stateGranted, Since: r.since}, request{upgrade: r.upgrade, pos: r.pos, seq: r.seq}})
	}
	m.lockAll()
	m.forEachHeadLocked(func(h *lockHead) {
		for r := h.holders.head; r != nil; r = r.next {
			add(r)
		}
		for r := h.waiters.head; r != nil; r = r.next {
			add(r)
		}
	})
	for _, r := range m.rt.reqs {
		add(r)
	}
	for i := range rows {
		rows[i].info.Label = m.label(rows[i].info.TxID)
	}
	m.unlockAll()
	slices.SortFunc(rows, func(a, b row) int {
		x, y := a.info, b.info
		if c := bytes.Compare(x.Key, y.Key); c != 0 {
			return c
		}
		if c := boolOrder(x.Range, y.Range); c != 0 {
			return c
		}
		if c := compareEnd(x.End, y.End); c != 0 {
			return c
		}
		if c := boolOrder(!x.Granted, !y.Granted); c != 0 {
			return c
		}
		if x.Granted {
			return cmp.Compare(x.TxID, y.TxID)
		}
		return queueOrder(&a.at, &b.at)
	})
	out := make([]LockInfo, len(rows))
	for i := range rows {
		out[i] = rows[i].info
	}
	return out
}

// queueOrder sorts the waiters of one target as their queue does: upgrades
// first, then queue order.
func queueOrder(a, b *request) int {
	switch {
	case a.upgrade != b.upgrade:
		return boolOrder(b.upgrade, a.upgrade)
	case a.before(b):
		return -1
	case b.before(a):
		return 1
	}
	return 0
}

func boolOrder(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// compareEnd orders range ends with nil (unbounded) last.
func compareEnd(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
}

// WaitingOn reports whether txn is blocked right now, and on what. Tests
// poll it instead of sleeping.
func (m *Manager) WaitingOn(txn uint64) (LockInfo, bool) {
	m.graph.Lock()
	r, ok := m.graph.WaitingOnLocked(txn)
	var info LockInfo
	if ok {
		// While r is in the graph its head is alive, so its key is stable;
		// txn, mode, the range bounds and queued never change.
		key, end, isRange := r.target()
		info = LockInfo{TxID: txn, Key: bytes.Clone(key), End: bytes.Clone(end), Range: isRange,
			Mode: r.mode, Since: r.queued}
	}
	m.graph.Unlock()
	if !ok {
		return LockInfo{}, false
	}
	info.Label = m.label(txn)
	return info, true
}

// WriteDOT writes the wait-for graph in Graphviz DOT: solid edges to
// holders, dashed (soft) edges to requests queued ahead, each labelled with
// the waiter's mode and target.
func (m *Manager) WriteDOT(w io.Writer) error {
	return m.graph.WriteDOT(w, &deadlock.DOTOptions[*request]{
		NodeLabel: func(txn uint64) string {
			if l := m.label(txn); l != "" {
				return "txn " + strconv.FormatUint(txn, 10) + "\n" + l
			}
			return "txn " + strconv.FormatUint(txn, 10)
		},
		WaitLabel: func(r *request) string {
			key, end, isRange := r.target()
			return r.mode.short() + " " + formatTarget(key, end, isRange)
		},
	})
}

// Holds reports whether txn holds t in mode or a stronger one (a point is
// also held through a granted range covering it).
func (m *Manager) Holds(txn uint64, t Target, mode Mode) bool {
	if t.validate() != nil || mode >= numModes {
		return false
	}
	if t.Range {
		sh := &m.shards[0]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return m.rangeCoversLocked(txn, t.Key, t.End, true, mode)
	}
	hash := hashKey(m.seed, t.Key)
	sh := m.shardFor(hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if h := sh.lookupLocked(hash, t.Key); h != nil {
		if r := h.holderOf(txn); r != nil && r.mode.covers(mode) {
			return true
		}
	}
	return m.rangeCoversLocked(txn, t.Key, nil, false, mode)
}

// HeldByOther reports whether a transaction other than txn holds a granted
// lock conflicting with mode on key: a point lock on it, or a range lock
// covering it. Used by optimistic commit validation.
func (m *Manager) HeldByOther(txn uint64, key []byte, mode Mode) bool {
	return m.HeldByOtherFunc(txn, key, mode, nil)
}

// HeldByOtherFunc is HeldByOther counting only the holders for which
// counts returns true (nil counts every holder). counts runs with a shard
// mutex held: it must be quick and must not call the Manager. The
// transaction engine uses it to ignore holders that have not begun to
// commit, since their commit timestamps will follow the caller's.
func (m *Manager) HeldByOtherFunc(txn uint64, key []byte, mode Mode, counts func(holder uint64) bool) bool {
	hash := hashKey(m.seed, key)
	sh := m.shardFor(hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if h := sh.lookupLocked(hash, key); h != nil {
		for r := h.holders.head; r != nil; r = r.next {
			if r.txn != txn && Conflicts(r.mode, mode) && (counts == nil || counts(r.txn)) {
				return true
			}
		}
	}
	return m.otherRangeLocked(txn, key, nil, false, mode, counts)
}

// otherRangeLocked reports whether another transaction holds a granted range
// conflicting with mode that touches the target.
func (m *Manager) otherRangeLocked(txn uint64, key, end []byte, isRange bool, mode Mode, counts func(uint64) bool) bool {
	for _, x := range m.rt.reqs {
		if x.txn != txn && x.state == stateGranted && Conflicts(x.mode, mode) && x.touches(key, end, isRange) &&
			(counts == nil || counts(x.txn)) {
			return true
		}
	}
	return false
}

// RangeHeldByOther reports whether a transaction other than txn holds a
// granted lock conflicting with mode on any point inside [start, end) (end
// nil: unbounded) or on a range overlapping it. O(locked keys).
func (m *Manager) RangeHeldByOther(txn uint64, start, end []byte, mode Mode) bool {
	return m.RangeHeldByOtherFunc(txn, start, end, mode, nil)
}

// RangeHeldByOtherFunc is RangeHeldByOther counting only the holders for
// which counts returns true (see HeldByOtherFunc).
func (m *Manager) RangeHeldByOtherFunc(txn uint64, start, end []byte, mode Mode, counts func(holder uint64) bool) bool {
	if end != nil && bytes.Compare(start, end) >= 0 {
		return false
	}
	m.lockAll()
	defer m.unlockAll()
	if m.otherRangeLocked(txn, start, end, true, mode, counts) {
		return true
	}
	found := false
	m.forEachHeadLocked(func(h *lockHead) {
		if found || !inRange(h.key, start, end) {
			return
		}
		for r := h.holders.head; r != nil; r = r.next {
			if r.txn != txn && Conflicts(r.mode, mode) && (counts == nil || counts(r.txn)) {
				found = true
				return
			}
		}
	})
	return found
}

// Held returns the locks txn holds now (granted requests only), in no
// particular order, with private copies of their keys. It is meant for txn
// itself — what a transaction about to be rolled back held, so that its
// retry can lock the same keys first — and takes only txn's own state lock:
// the keys of locks txn holds cannot change under it.
func (m *Manager) Held(txn uint64) []LockInfo {
	ts := m.txnShardFor(txn)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	st := ts.mu.txns[txn]
	if st == nil {
		return nil
	}
	var out []LockInfo
	for r := st.held; r != nil; r = r.txnNext {
		key, end, isRange := r.target()
		out = append(out, LockInfo{TxID: txn, Key: bytes.Clone(key), End: bytes.Clone(end), Range: isRange,
			Mode: r.mode, Granted: true})
	}
	return out
}
