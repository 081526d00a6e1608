package lockmgr

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/txkv/txkv/deadlock"
)

var (
	// ErrLockNotAvailable is returned at once by NoWait and SkipLocked
	// requests that cannot be granted now (SQL NOWAIT's 55P03).
	ErrLockNotAvailable = errors.New("txkv: lock not available")
	// ErrLockTimeout is returned when a blocked request's timeout expires.
	ErrLockTimeout = errors.New("txkv: lock wait timeout")
	// ErrDeadlock is matched by every *DeadlockError. It lives in deadlock/
	// and is re-exported here.
	ErrDeadlock = deadlock.ErrDeadlock
	// ErrClosed is returned by Acquire after Close, and ends waits that are
	// pending when Close is called.
	ErrClosed = errors.New("txkv: lock manager closed")
	// ErrInvalidRequest wraps every rejection of a malformed request (bad
	// mode, policy or target).
	ErrInvalidRequest = errors.New("txkv: invalid lock request")
	// ErrAlreadyWaiting is returned when a transaction that is already
	// blocked in one Acquire asks for another lock that must wait: a
	// transaction waits for one thing at a time.
	ErrAlreadyWaiting = errors.New("txkv: transaction is already waiting for a lock")
)

// WaitEdge is one edge of a wait-for cycle: Waiter waits for Holder on the
// target, asking for Mode.
type WaitEdge struct {
	Waiter, Holder uint64
	Key, End       []byte // the contended target; End nil and !Range: point key
	Range          bool
	Mode           Mode // the mode the waiter asked for
	Soft           bool // Holder is an earlier queued waiter, not a holder
	// HolderMode is the mode Holder holds on the target (for a soft edge:
	// the mode it is queued for).
	HolderMode Mode
	// Upgrade says the waiter already holds a weaker lock overlapping the
	// target: it asks to convert it (S to X), as a read-then-write does.
	Upgrade bool
}

// String renders the edge for humans.
func (e WaitEdge) String() string {
	return fmt.Sprintf("txn %d %s", e.Waiter, e.describe(func(id uint64) string { return fmt.Sprintf("txn %d", id) }))
}

// describe renders the edge after the waiter's name: what it holds and
// wants, and who is in the way in which mode.
func (e WaitEdge) describe(name func(uint64) string) string {
	wants := fmt.Sprintf("wants %s on %s", e.Mode, formatTarget(e.Key, e.End, e.Range))
	if e.Upgrade {
		wants = fmt.Sprintf("holds %s, wants %s on %s (a lock upgrade)", weaker(e.Mode), e.Mode,
			formatTarget(e.Key, e.End, e.Range))
	}
	if e.Soft {
		return fmt.Sprintf("%s, queued behind %s (waiting for %s)", wants, name(e.Holder), e.HolderMode)
	}
	return fmt.Sprintf("%s, held %s by %s", wants, e.HolderMode, name(e.Holder))
}

// weaker is the mode an upgrade to m converts from.
func weaker(m Mode) Mode {
	if m == Exclusive {
		return Shared
	}
	return m
}

// DeadlockError is returned to the victim of a deadlock. Cycle lists the
// wait-for edges of the cycle in order: Cycle[i].Holder == Cycle[i+1].Waiter
// and the last edge leads back to the first waiter.
type DeadlockError struct {
	Victim uint64
	Cycle  []WaitEdge
	// Labels holds the labels (SetLabel) of the cycle's transactions that
	// have one; nil when none do.
	Labels map[uint64]string
}

// Error explains the cycle in one paragraph, for example:
//
//	txkv: deadlock detected: txn 1 wants exclusive on "b", held exclusive by txn 2;
//	txn 2 wants exclusive on "a", held exclusive by txn 1; txn 2 was chosen as the victim
//
// and, when transactions deadlock converting shared locks to exclusive:
//
//	txkv: deadlock detected: txn 2 holds shared, wants exclusive on "k" (a lock
//	upgrade), held shared by txn 1; txn 1 holds shared, wants exclusive on "k"
//	(a lock upgrade), held shared by txn 2; txn 2 was chosen as the victim (read
//	what you will write with GetForUpdate: it locks exclusively at once)
func (e *DeadlockError) Error() string {
	var b strings.Builder
	b.WriteString("txkv: deadlock detected: ")
	upgrades := false
	for i, ed := range e.Cycle {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.txnName(ed.Waiter) + " " + ed.describe(e.txnName))
		upgrades = upgrades || ed.Upgrade
	}
	fmt.Fprintf(&b, "; %s was chosen as the victim", e.txnName(e.Victim))
	if upgrades {
		b.WriteString(" (read what you will write with GetForUpdate: it locks exclusively at once)")
	}
	return b.String()
}

func (e *DeadlockError) txnName(id uint64) string {
	if l, ok := e.Labels[id]; ok && l != "" {
		return fmt.Sprintf("txn %d (%q)", id, l)
	}
	return fmt.Sprintf("txn %d", id)
}

// Is makes errors.Is(err, ErrDeadlock) true.
func (e *DeadlockError) Is(target error) bool { return target == ErrDeadlock }

// LockError details a lock request that was refused: NoWait or SkipLocked
// found it unavailable (Err is ErrLockNotAvailable), a Block wait ran out
// of time (Err is ErrLockTimeout), or a Block request with a timeout of 0
// found it unavailable (Err is ErrLockTimeout, Timeout is 0: it did not
// wait).
// errors.Is(err, ErrLockNotAvailable) and errors.Is(err, ErrLockTimeout)
// match it; errors.As gives the detail, as PostgreSQL's 55P03 names the
// relation and InnoDB's lock monitor the blocking transaction. For example:
//
//	txkv: lock not available: txn 7 wants exclusive on "seat-12A", held by txn 3
//	txkv: lock wait timeout: txn 9 waited 50ms for shared on ["a","m"), held by txn 4, 6
//	txkv: lock wait timeout: txn 9 did not wait for shared on "k", held by txn 4
type LockError struct {
	Err     error    // ErrLockNotAvailable or ErrLockTimeout
	Txn     uint64   // the transaction that asked
	Target  Target   // what it asked for (a private copy)
	Mode    Mode     // in which mode
	Holders []uint64 // conflicting holders at the time of the refusal, ascending
	// Queued lists conflicting requests queued ahead of it (FIFO: it would
	// wait for them too), ascending: on its key, those back to and including
	// the nearest exclusive one (which waits for any before it); every
	// conflicting range request ahead.
	Queued  []uint64
	Timeout time.Duration // the wait that ran out (ErrLockTimeout); 0 for a refusal
	// Labels holds the labels (SetLabel) of the transactions above that
	// have one; nil when none do.
	Labels map[uint64]string
}

// Error explains the refusal in one line.
func (e *LockError) Error() string {
	var b strings.Builder
	b.WriteString(e.Err.Error())
	b.WriteString(": ")
	target := formatTarget(e.Target.Key, e.Target.End, e.Target.Range)
	switch {
	case e.Timeout > 0:
		fmt.Fprintf(&b, "%s waited %v for %s on %s", e.txnName(e.Txn), e.Timeout, e.Mode, target)
	case errors.Is(e.Err, ErrLockTimeout):
		fmt.Fprintf(&b, "%s did not wait for %s on %s", e.txnName(e.Txn), e.Mode, target)
	default:
		fmt.Fprintf(&b, "%s wants %s on %s", e.txnName(e.Txn), e.Mode, target)
	}
	e.writeTxns(&b, ", held by ", e.Holders)
	e.writeTxns(&b, ", queued behind ", e.Queued)
	return b.String()
}

// Unwrap returns Err, so errors.Is matches the sentinel.
func (e *LockError) Unwrap() error { return e.Err }

func (e *LockError) writeTxns(b *strings.Builder, prefix string, ids []uint64) {
	for i, id := range ids {
		if i == 0 {
			b.WriteString(prefix)
		} else {
			b.WriteString(", ")
		}
		b.WriteString(e.txnName(id))
	}
}

func (e *LockError) txnName(id uint64) string {
	if l := e.Labels[id]; l != "" {
		return fmt.Sprintf("txn %d (%q)", id, l)
	}
	return "txn " + strconv.FormatUint(id, 10)
}

// newLockError builds the error for txn's refused request from the wait-for
// edges the request would have had (hard: holders; soft: queued ahead).
func newLockError(err error, txn uint64, t Target, mode Mode, edges []deadlock.Edge, timeout time.Duration) *LockError {
	e := &LockError{Err: err, Txn: txn, Mode: mode, Timeout: timeout,
		Target: Target{Key: bytes.Clone(t.Key), End: bytes.Clone(t.End), Range: t.Range}}
	for _, ed := range edges {
		if ed.Soft {
			e.Queued = append(e.Queued, ed.Holder)
		} else {
			e.Holders = append(e.Holders, ed.Holder)
		}
	}
	e.Holders, e.Queued = sortedUnique(e.Holders), sortedUnique(e.Queued)
	return e
}

func sortedUnique(ids []uint64) []uint64 {
	slices.Sort(ids)
	return slices.Compact(ids)
}
