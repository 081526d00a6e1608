package txkv

import (
	"github.com/txkv/txkv/lockmgr"
	"github.com/txkv/txkv/txn"
)

// WaitForEdge is one edge of the wait-for graph: Waiter waits for Holder
// (a holder of a conflicting lock, or with Soft a conflicting request queued
// ahead) while asking for Mode on Key, or on [Key, End) when Range.
//
// Fields (lockmgr.GraphEdge):
//
//	Waiter, Holder uint64
//	Soft           bool
//	Key, End       []byte
//	Range          bool
//	Mode           Mode
//	Since          time.Time
type WaitForEdge = lockmgr.GraphEdge

// WaitForGraph returns the current wait-for graph as data: the edges
// WriteWaitForGraph draws, ordered by waiter then holder. A transaction
// that only holds locks appears only as a Holder. Together with Locks it
// is what a live view of the lock table (package txkvhttp) shows.
func (db *DB) WaitForGraph() []WaitForEdge { return db.e.LockManager().WaitForGraph() }

// StrategyStats are one strategy's commit and abort counts, the values of
// Stats.ByStrategy.
//
// Fields (txn.StrategyStats):
//
//	Commits, Aborts uint64
//	// Conflicts counts the aborts that were conflicts or deadlock victims
//	// (the strategy's share of Stats.ConflictRate's events).
//	Conflicts uint64
type StrategyStats = txn.StrategyStats
