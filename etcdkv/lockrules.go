package etcdkv

import (
	"bytes"
	"math"

	"github.com/txkv/txkv/lockmgr"
)

// The grant rule, as pure functions of one consistent read of the lock
// entries that overlap a request (a "snapshot"): whoever asks evaluates it
// itself, so no process ever hands a lock to another; a waiter evaluates it
// again after each deletion it watched. See doc.go, "Locks".

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
// other transactions that overlap it, conflict with its mode and stand
// ahead of it. An upgrade (req.base > 0) does not wait for entries that
// cannot be granted before its transaction ends anyway (they wait for the
// lock it upgrades): it goes ahead of them, as locally. relied lists the
// entries whose existence that skip depends on: a request granted without
// waiting must be put only if they still exist (see tryLock).
func blockers(req *entry, snap []entry) (bl, relied []entry) {
	for i := range snap {
		f := &snap[i]
		if f.own == req.own || !overlaps(req, f) || !lockmgr.Conflicts(f.mode, req.mode) {
			continue
		}
		if f.pos() >= req.at() {
			continue // behind req: it waits for req, not the other way round
		}
		if req.base > 0 && f.base == 0 {
			if skip, via := waitsForBase(req, f, snap); skip {
				if via != nil {
					relied = append(relied, *via)
				}
				continue
			}
		}
		bl = append(bl, *f)
	}
	return bl, relied
}

// waitsForBase reports whether ordinary entry f can be granted only after
// req's transaction releases the lock req upgrades: f conflicts with that
// lock and queued after it, or f waits behind such an entry (via, which
// must still exist for the conclusion to hold).
func waitsForBase(req, f *entry, snap []entry) (bool, *entry) {
	b := findRev(snap, req.own, req.base)
	if b == nil || f.rev < b.rev {
		return false, nil
	}
	blockedByBase := func(x *entry) bool {
		return x.rev > b.rev && overlaps(x, b) && lockmgr.Conflicts(b.mode, x.mode)
	}
	if blockedByBase(f) {
		return true, nil
	}
	for i := range snap {
		v := &snap[i]
		if v.base != 0 || v.own == req.own || v.own == f.own || v.rev >= f.rev {
			continue
		}
		if blockedByBase(v) && overlaps(v, f) && lockmgr.Conflicts(v.mode, f.mode) {
			return true, v
		}
	}
	return false, nil
}

// findRev returns o's entry created at rev, if snap holds it.
func findRev(snap []entry, o owner, rev int64) *entry {
	for i := range snap {
		if snap[i].own == o && snap[i].rev == rev {
			return &snap[i]
		}
	}
	return nil
}

// granted reports whether entry e of snap is granted by the rule (for
// error messages: which blockers hold and which are queued).
func granted(e *entry, snap []entry) bool {
	bl, _ := blockers(e, snap)
	return len(bl) == 0
}
