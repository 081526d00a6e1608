package deadlock

import (
	"errors"
	"fmt"
)

// ErrDeadlock is the sentinel every deadlock error matches with errors.Is.
// It is defined here, the lowest package that knows what a deadlock is; the
// lock manager and the public package re-export it.
var ErrDeadlock = errors.New("txkv: deadlock detected")

// Mode says when the wait-for graph is searched for cycles.
type Mode uint8

const (
	// Immediate searches for a cycle through a transaction as soon as it
	// starts to wait (InnoDB's default, innodb_deadlock_detect=ON).
	Immediate Mode = iota
	// Periodic leaves waits alone and sweeps the whole graph from a background
	// goroutine every interval (PostgreSQL's deadlock_timeout, run regularly).
	Periodic
	// Off never searches: only lock timeouts end a deadlock
	// (innodb_deadlock_detect=OFF).
	Off
)

// String returns "immediate", "periodic" or "off".
func (m Mode) String() string {
	switch m {
	case Immediate:
		return "immediate"
	case Periodic:
		return "periodic"
	case Off:
		return "off"
	}
	return fmt.Sprintf("deadlock.Mode(%d)", uint8(m))
}

// Valid reports whether m is one of the defined modes.
func (m Mode) Valid() bool { return m <= Off }

// VictimPolicy says which transaction of a cycle is aborted.
type VictimPolicy uint8

const (
	// Youngest aborts the youngest transaction of the cycle: the one with the
	// largest age, ties broken by the larger ID. Ages grow with start time,
	// so the youngest has probably done the least work (Gray & Reuter's
	// "least work lost"). A transaction's age is its ID unless the caller
	// supplies ages (ChooseVictimByAge): an engine that retries an aborted
	// transaction under a new ID keeps the first attempt's age, so the retry
	// grows older instead of being the youngest again every time (the idea
	// behind wound-wait's timestamps and CockroachDB's priorities).
	Youngest VictimPolicy = iota
	// Requester aborts the transaction whose wait closed the cycle
	// (PostgreSQL's choice). In a periodic sweep that is the cycle member
	// that started waiting last.
	Requester
)

// String returns "youngest" or "requester".
func (p VictimPolicy) String() string {
	switch p {
	case Youngest:
		return "youngest"
	case Requester:
		return "requester"
	}
	return fmt.Sprintf("deadlock.VictimPolicy(%d)", uint8(p))
}

// Valid reports whether p is one of the defined policies.
func (p VictimPolicy) Valid() bool { return p <= Requester }

// Edge says "Waiter waits for Holder". A hard edge points at a transaction
// that holds a conflicting lock; a soft edge points at a transaction whose
// conflicting request is queued ahead of the waiter's (PostgreSQL lmgr
// README, "soft edges").
type Edge struct {
	Waiter, Holder uint64
	Soft           bool
}

// String renders the edge as "1 -> 2" (hard) or "1 ~> 2" (soft).
func (e Edge) String() string {
	if e.Soft {
		return fmt.Sprintf("%d ~> %d", e.Waiter, e.Holder)
	}
	return fmt.Sprintf("%d -> %d", e.Waiter, e.Holder)
}

// ChooseVictim is ChooseVictimByAge with every transaction's age equal to
// its ID.
func ChooseVictim(cycle []Edge, p VictimPolicy, requester uint64) uint64 {
	return ChooseVictimByAge(cycle, p, requester, nil)
}

// ChooseVictimByAge picks the one transaction of cycle to abort. requester
// is the transaction whose wait closed the cycle: the Requester policy picks
// it when it is in the cycle. Otherwise (Youngest, or a requester outside the
// cycle) the youngest member is picked: the largest age(txn), ties broken by
// the larger ID. A smaller age is older; nil age means every age is the ID.
// An empty cycle yields 0.
func ChooseVictimByAge(cycle []Edge, p VictimPolicy, requester uint64, age func(txn uint64) uint64) uint64 {
	if age == nil {
		age = func(txn uint64) uint64 { return txn }
	}
	var victim, victimAge uint64
	inCycle := false
	for i, e := range cycle {
		if a := age(e.Waiter); i == 0 || a > victimAge || a == victimAge && e.Waiter > victim {
			victim, victimAge = e.Waiter, a
		}
		if e.Waiter == requester {
			inCycle = true
		}
	}
	if p == Requester && inCycle {
		return requester
	}
	return victim
}

// IsCycle reports whether edges form one closed walk: each edge starts where
// the previous one ended and the last ends where the first starts.
func IsCycle(edges []Edge) bool {
	if len(edges) == 0 {
		return false
	}
	for i, e := range edges {
		next := edges[(i+1)%len(edges)]
		if e.Holder != next.Waiter {
			return false
		}
	}
	return true
}
