package etcdkv

import (
	"bytes"
	"math"

	"github.com/txkv/txkv/lockmgr"
)

// The grant rule, as pure functions of one consistent read of the lock
// entries that overlap a request (a "snapshot"): whoever asks evaluates it
// itself, so no process ever hands a lock to another; a waiter evaluates it
// again after each deletion it watched. A request the rule grants is
// marked granted by a Txn that succeeds only if no entry overlapping it
// was created or changed since the snapshot, so of two conflicting
// requests the second to be marked sees the first as a holder: grants are
// serialized by etcd, whatever the rule says about order. See doc.go,
// "Locks".

// owner identifies a transaction across processes: the session lease of
// its DB handle and its ID within that handle.
type owner struct {
	lease int64
	tx    uint64
}

// entry is one lock request as stored in etcd.
type entry struct {
	key     string // the etcd key of the entry
	rev     int64  // its CreateRevision: the queue position (0: not yet put)
	mode    lockmgr.Mode
	own     owner
	start   []byte // the user key of a point; a range's start (nil: unbounded)
	end     []byte // a range's end (nil: unbounded); nil for a point
	isRange bool
	// base > 0 marks a request of a transaction that already holds a
	// granted lock overlapping the target (an upgrade, S->X on one key
	// being the common case): base is that lock's CreateRevision, and the
	// request stands at that position for everyone queued behind it.
	base int64
	// granted is set in etcd by the grant itself: a put that grants at
	// once, or the conditional put that marks a waiter granted.
	granted bool
}

// pos is where the entry stands in the queue: its creation, or for an
// upgrade the position of the lock it upgrades.
func (e *entry) pos() int64 {
	if e.base > 0 {
		return e.base
	}
	return e.rev
}

// position of a request not yet put: behind everything.
func (e *entry) at() int64 {
	if e.rev == 0 {
		return math.MaxInt64
	}
	return e.rev
}

// hi is the exclusive upper bound of the entry's target (nil: unbounded).
func (e *entry) hi() []byte {
	if e.isRange {
		return e.end
	}
	return append(bytes.Clone(e.start), 0)
}

// overlaps reports whether two targets share a key.
func overlaps(a, b *entry) bool {
	return below(a.start, b.hi()) && below(b.start, a.hi())
}

// below reports whether key < bound, an unbounded (nil) bound being
// above every key. A nil key is the unbounded start: below any bound.
func below(key, bound []byte) bool {
	return bound == nil || bytes.Compare(key, bound) < 0
}

// covers reports whether holding h makes request r redundant: h's target
// contains r's and h's mode is at least as strong.
func covers(h, r *entry) bool {
	if h.mode != lockmgr.Exclusive && r.mode == lockmgr.Exclusive {
		return false
	}
	if bytes.Compare(h.start, r.start) > 0 {
		return false
	}
	hh, rh := h.hi(), r.hi()
	return hh == nil || (rh != nil && bytes.Compare(rh, hh) <= 0)
}

// blockers returns the entries of snap that req must wait for: those of
// other transactions that overlap it and conflict with its mode, and are
// granted (holders, wherever they stand) or queued ahead of it. An upgrade
// goes ahead of a waiter whose target meets a lock its transaction holds
// (the local engine's "passes" rule: that waiter could only deadlock with
// it), so on one key S->X waits for the other holders only.
func blockers(req *entry, snap []entry) []entry {
	var bl []entry
	for i := range snap {
		f := &snap[i]
		if f.own == req.own || !overlaps(req, f) || !lockmgr.Conflicts(f.mode, req.mode) {
			continue
		}
		switch {
		case f.granted:
			bl = append(bl, *f)
		case f.pos() >= req.at():
			// queued behind req: it waits for req, not the other way round
		case req.base > 0 && passes(req.own, f, snap):
		default:
			bl = append(bl, *f)
		}
	}
	return bl
}

// passes reports whether o holds a granted lock in snap that overlaps f.
func passes(o owner, f *entry, snap []entry) bool {
	for i := range snap {
		if g := &snap[i]; g.own == o && g.granted && overlaps(g, f) {
			return true
		}
	}
	return false
}
