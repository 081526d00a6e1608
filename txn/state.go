package txn

import (
	"fmt"

	"github.com/txkv/txkv/internal/invariants"
)

// txState is where a transaction is in its life. Every transaction walks
// this machine once, forward only:
//
//	               Commit: write set locked,
//	               joins the committing set
//	┌────────┐   ─────────────────────────────▶   ┌────────────┐
//	│ active │                                     │ committing │
//	└────────┘                                     └────────────┘
//	    │ Rollback, a failure, a cancelled ctx,          │ installed (or failed):
//	    │ Close, a read-only Commit                      │ locks released early
//	    ▼                                                ▼
//	┌──────────────────────────────────────────────────────────┐
//	│ released: locks and reader released, out of the          │
//	│ committing set; may still wait for durability (settle)   │
//	└──────────────────────────────────────────────────────────┘
//	    │ unbound from its context, counted, unregistered
//	    ▼
//	┌───────┐
//	│ ended │  (View may recycle it: recyclable)
//	└───────┘
//
// Orthogonal facts are flags, not states: locked (it may hold locks),
// labeled (the lock table keeps its label or age), latestReads (it mixed
// locked reads of the latest version with snapshot reads), recyclable.
//
// Under the build tag txkv_invariants every transition is checked against
// this diagram (setStateLocked).
type txState uint8

const (
	stateActive     txState = iota // running: reads, writes, locks
	stateCommitting                // in the committing set: about to take, or holding, a commit ts
	stateReleased                  // done: nothing held; maybe waiting for durability
	stateEnded                     // unregistered and counted
)

var stateNames = [...]string{"active", "committing", "released", "ended"}

func (s txState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("txState(%d)", int(s))
}

// next lists each state's allowed successors.
var next = [...][]txState{
	stateActive:     {stateCommitting, stateReleased},
	stateCommitting: {stateReleased},
	stateReleased:   {stateEnded},
	stateEnded:      nil,
}

// setStateLocked moves the transaction to state to.
func (tx *Tx) setStateLocked(to txState) {
	if invariants.Enabled && !allowed(tx.state, to) {
		panic(fmt.Sprintf("txkv: txn %d: state %v → %v is not a transition of the machine", tx.id, tx.state, to))
	}
	tx.state = to
}

func allowed(from, to txState) bool {
	for _, s := range next[from] {
		if s == to {
			return true
		}
	}
	return false
}

// finished reports whether the transaction is done: its locks and reader
// are released, and every later call returns ErrTxDone or the error that
// ended it.
func (tx *Tx) finished() bool { return tx.state >= stateReleased }
