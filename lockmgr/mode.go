package lockmgr

import (
	"bytes"
	"fmt"
	"strconv"
	"time"
)

// Mode is a lock mode.
type Mode uint8

const (
	// Shared (S) is compatible with S: many readers.
	Shared Mode = iota
	// Exclusive (X) conflicts with everything: one writer.
	Exclusive

	numModes = 2
)

// conflictMatrix is the single source of truth for compatibility:
//
//	          requested
//	        +-----+-----+
//	held    |  S  |  X  |
//	+-------+-----+-----+
//	|   S   |  ok |  ✗  |
//	|   X   |  ✗  |  ✗  |
//	+-------+-----+-----+
//
// It is symmetric, as every lock matrix in Gray & Reuter is.
var conflictMatrix = [numModes][numModes]bool{
	Shared:    {Shared: false, Exclusive: true},
	Exclusive: {Shared: true, Exclusive: true},
}

// Conflicts reports whether a lock held in mode held by one transaction
// prevents another transaction from being granted requested. Unknown modes
// conflict with everything.
func Conflicts(held, requested Mode) bool {
	if held >= numModes || requested >= numModes {
		return true
	}
	return conflictMatrix[held][requested]
}

// covers reports whether holding m makes a request for r redundant: every
// mode r conflicts with, m conflicts with too (X covers S and X; S covers S).
func (m Mode) covers(r Mode) bool {
	for o := Mode(0); o < numModes; o++ {
		if Conflicts(r, o) && !Conflicts(m, o) {
			return false
		}
	}
	return m < numModes && r < numModes
}

// conflictsWithAll reports whether m conflicts with every mode (X): a
// request in such a mode waits for every conflicting request queued ahead
// of it, and every later request waits for it.
func (m Mode) conflictsWithAll() bool {
	for o := Mode(0); o < numModes; o++ {
		if !Conflicts(m, o) {
			return false
		}
	}
	return true
}

// String returns "shared" or "exclusive".
func (m Mode) String() string {
	switch m {
	case Shared:
		return "shared"
	case Exclusive:
		return "exclusive"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// short returns "S" or "X" for traces and graphs.
func (m Mode) short() string {
	switch m {
	case Shared:
		return "S"
	case Exclusive:
		return "X"
	}
	return m.String()
}

// WaitPolicy says what a request does when it cannot be granted at once.
// Whatever the policy, a request that can be granted at once is granted;
// the policies differ only in what happens otherwise.
type WaitPolicy uint8

const (
	// Block queues the request FIFO and waits for a grant, the timeout, the
	// context, a deadlock or Close.
	Block WaitPolicy = iota
	// NoWait fails at once with ErrLockNotAvailable (SQL NOWAIT). The request
	// is never enqueued and adds no wait-for edge.
	NoWait
	// SkipLocked is the same "try" used by scans with SKIP LOCKED: the caller
	// skips the key on ErrLockNotAvailable. Counted apart in Stats.
	SkipLocked
	// noWaitTimeout is Block with a timeout of 0 (Acquire turns one into
	// the other): exactly NoWait — never enqueued, no wait-for edge, so it
	// can neither close a deadlock nor make anyone a victim — but the
	// refusal is a *LockError matching ErrLockTimeout, "did not wait",
	// counted in Stats.Timeouts.
	noWaitTimeout
)

// Forever is the timeout that never fires: Acquire waits with no timer
// (the context, a deadlock and Close still end the wait).
//
// One convention for every wait bound in txkv: d > 0 waits at most d, 0
// does not wait (a lock not free now is refused at once with
// ErrLockTimeout, never queued), Forever (any negative duration) waits
// without a bound. Options structs add one rule of their own: there a zero
// field means "the default" (Options.LockTimeout: 5 s).
const Forever time.Duration = -1

// String returns "block", "nowait", "skiplocked" or "nowait-timeout".
func (p WaitPolicy) String() string {
	switch p {
	case Block:
		return "block"
	case NoWait:
		return "nowait"
	case SkipLocked:
		return "skiplocked"
	case noWaitTimeout:
		return "nowait-timeout"
	}
	return "WaitPolicy(" + strconv.Itoa(int(p)) + ")"
}

// valid reports whether p is one of the policies above.
func (p WaitPolicy) valid() bool { return p <= SkipLocked }

// Target is a point key or a key range [Key, End).
type Target struct {
	Key   []byte // point key, or range start (nil/empty: from the first key)
	End   []byte // range end, exclusive (nil with Range: to the last key); nil for points
	Range bool
}

// Point returns the target for one key.
func Point(key []byte) Target { return Target{Key: key} }

// Span returns the target for the keys in [start, end); nil end means no
// upper bound, nil start means from the first key.
func Span(start, end []byte) Target { return Target{Key: start, End: end, Range: true} }

// String renders a point as its quoted key and a range as ["a","c").
func (t Target) String() string { return formatTarget(t.Key, t.End, t.Range) }

func formatTarget(key, end []byte, isRange bool) string {
	if !isRange {
		return strconv.Quote(string(key))
	}
	e := "+inf"
	if end != nil {
		e = strconv.Quote(string(end))
	}
	return "[" + strconv.Quote(string(key)) + "," + e + ")"
}

func (t Target) validate() error {
	if !t.Range {
		if t.End != nil {
			return fmt.Errorf("%w: point target with an End (use Span for ranges)", ErrInvalidRequest)
		}
		return nil
	}
	if t.End != nil && bytes.Compare(t.Key, t.End) >= 0 {
		return fmt.Errorf("%w: empty range %s", ErrInvalidRequest, t)
	}
	return nil
}

// inRange reports whether key lies in [start, end); nil end is unbounded.
func inRange(key, start, end []byte) bool {
	return bytes.Compare(key, start) >= 0 && (end == nil || bytes.Compare(key, end) < 0)
}

// overlaps reports whether [s1,e1) and [s2,e2) share a key.
func overlaps(s1, e1, s2, e2 []byte) bool {
	return (e2 == nil || bytes.Compare(s1, e2) < 0) && (e1 == nil || bytes.Compare(s2, e1) < 0)
}

// targetsOverlap reports whether two targets share a key: a point is
// (key, nil, false), a range (start, end, true).
func targetsOverlap(k1, e1 []byte, r1 bool, k2, e2 []byte, r2 bool) bool {
	switch {
	case !r1 && !r2:
		return bytes.Equal(k1, k2)
	case !r1:
		return inRange(k1, k2, e2)
	case !r2:
		return inRange(k2, k1, e1)
	}
	return overlaps(k1, e1, k2, e2)
}

// targetWithin reports whether every key of target 1 is in target 2. It
// never says so of a range in a point (a range holding one key is rare and
// only costs the callers a slower check).
func targetWithin(k1, e1 []byte, r1 bool, k2, e2 []byte, r2 bool) bool {
	switch {
	case !r1 && !r2:
		return bytes.Equal(k1, k2)
	case !r1:
		return inRange(k1, k2, e2)
	case !r2:
		return false
	}
	return contains(k2, e2, k1, e1)
}

// contains reports whether [s1,e1) includes all of [s2,e2).
func contains(s1, e1, s2, e2 []byte) bool {
	if bytes.Compare(s1, s2) > 0 {
		return false
	}
	if e1 == nil {
		return true
	}
	return e2 != nil && bytes.Compare(e2, e1) <= 0
}
