package txkvhttp

import (
	"strconv"
	"time"

	"github.com/txkv/txkv"
)

// The JSON documents the handler serves. Every field is documented in
// doc.go's endpoint table; the names are stable.

// Snapshot is everything the page shows at one instant (GET api/snapshot.json).
type Snapshot struct {
	Time    time.Time `json:"time"`
	Caption string    `json:"caption,omitempty"` // what is running, when the host says (SetDB)
	Locks   LockTable `json:"locks"`
	Graph   Graph     `json:"graph"`
	// Deadlocks are the deadlocks seen while someone watched, newest first.
	Deadlocks  DeadlockList `json:"deadlocks"`
	Strategies Strategies   `json:"strategies"`
	HotKeys    []HotKey     `json:"hot_keys"`
	Advice     Advice       `json:"advice"`
	Stats      txkv.Stats   `json:"stats"`
}

// Target is a locked key or range. Key and End are the exact bytes (base64
// in JSON); Text is the same for humans, in the notation of txkv's error
// messages: a point as a Go-quoted string ("acct/7"), a range as
// ["a","m") with +inf for an open end. Invalid UTF-8 and control bytes are
// \x-escaped in Text, so it is always valid, printable UTF-8.
type Target struct {
	Key   []byte `json:"key"`
	End   []byte `json:"end,omitempty"`
	Range bool   `json:"range"`
	Text  string `json:"text"`
}

func newTarget(key, end []byte, isRange bool) Target {
	return Target{Key: key, End: end, Range: isRange, Text: targetText(key, end, isRange)}
}

// targetText renders a target as lockmgr's messages do.
func targetText(key, end []byte, isRange bool) string {
	if !isRange {
		return strconv.Quote(string(key))
	}
	e := "+inf"
	if end != nil {
		e = strconv.Quote(string(end))
	}
	return "[" + strconv.Quote(string(key)) + "," + e + ")"
}

// LockTable is the lock table grouped by target (GET api/locks.json).
type LockTable struct {
	Targets []LockTarget `json:"targets"` // targets with waiters first, then in key order
	// Omitted counts the targets left out beyond the limit (MaxTargets).
	Omitted int `json:"omitted"`
	Holders int `json:"holders"` // granted requests in the whole table
	Waiters int `json:"waiters"` // waiting requests in the whole table
}

// LockTarget is one key or range with its holders and its queue.
type LockTarget struct {
	Target
	Holders []LockEntry `json:"holders"`
	Waiters []LockEntry `json:"waiters"` // in queue order
}

// LockEntry is one transaction holding or waiting for a target.
type LockEntry struct {
	Tx    uint64 `json:"tx"`
	Label string `json:"label,omitempty"`
	Mode  string `json:"mode"` // "shared" or "exclusive"
	// AgeMS is how long the transaction has waited (a waiter) or held the
	// lock (a holder), in milliseconds. txkv times waits only: for a lock
	// granted without a wait, the age counts from when this handler first
	// saw it, and AgeAtLeast says so.
	AgeMS      int64 `json:"age_ms"`
	AgeAtLeast bool  `json:"age_at_least,omitempty"`
}

// Graph is the wait-for graph (GET api/graph.json), with the cycle of the
// latest deadlock drawn over it: that cycle is already broken when it is
// seen (its victim was aborted), so its edges have Live false.
type Graph struct {
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
	// Deadlock is the latest deadlock whose cycle is drawn, or nil.
	Deadlock *Deadlock `json:"deadlock,omitempty"`
}

// GraphNode is a transaction of the graph.
type GraphNode struct {
	Tx      uint64 `json:"tx"`
	Label   string `json:"label,omitempty"`
	Waiting bool   `json:"waiting"`  // blocked now
	InCycle bool   `json:"in_cycle"` // on the latest deadlock's cycle
	Victim  bool   `json:"victim"`   // the latest deadlock's victim
}

// GraphEdge is "Waiter waits for Holder".
type GraphEdge struct {
	Waiter uint64 `json:"waiter"`
	Holder uint64 `json:"holder"`
	Soft   bool   `json:"soft"` // Holder is queued ahead, not holding
	Mode   string `json:"mode"` // what the waiter asks for
	Target Target `json:"target"`
	Live   bool   `json:"live"`  // in the graph now (false: an edge of the latest deadlock's cycle)
	Cycle  bool   `json:"cycle"` // an edge of the latest deadlock's cycle
	WaitMS int64  `json:"wait_ms,omitempty"`
}

// DeadlockList is the recent deadlocks (GET api/deadlocks.json).
type DeadlockList struct {
	// Total is every deadlock victim since the DB opened (Stats.Deadlocks).
	Total uint64 `json:"total"`
	// Missed counts deadlocks found while someone watched that were not
	// listed: the handler reads the DB's last 32 deadlocks
	// (DB.RecentDeadlocks) ten times a second, so only a storm of over 320
	// a second loses some, and counts them here.
	Missed uint64     `json:"missed"`
	Recent []Deadlock `json:"recent"` // newest first, at most MaxDeadlocks
}

// Deadlock is one deadlock: the cycle of waits and the victim chosen.
type Deadlock struct {
	Seq     uint64            `json:"seq"`  // 1, 2, … in order of capture
	Time    time.Time         `json:"time"` // when this handler saw it
	Before  bool              `json:"before_watch,omitempty"`
	Victim  uint64            `json:"victim"`
	Labels  map[uint64]string `json:"labels,omitempty"` // by transaction ID
	Cycle   []CycleEdge       `json:"cycle"`
	Message string            `json:"message"` // the victim's error text
}

// CycleEdge is one wait of a deadlock cycle.
type CycleEdge struct {
	Waiter     uint64 `json:"waiter"`
	Holder     uint64 `json:"holder"`
	Mode       string `json:"mode"`
	HolderMode string `json:"holder_mode"`
	Soft       bool   `json:"soft"`
	Upgrade    bool   `json:"upgrade"`
	Target     Target `json:"target"`
}

// Strategies is the per-strategy history (GET api/strategies.json).
type Strategies struct {
	IntervalMS int64            `json:"interval_ms"` // between points
	Series     []StrategySeries `json:"series"`      // one per strategy that ran
	// ConflictRate is Stats.ConflictRate at each point (the whole DB's).
	ConflictRate []Point `json:"conflict_rate"`
	// Marks are the changes of what runs (SetDB) within the history.
	Marks []Mark `json:"marks,omitempty"`
	// AdaptiveMode and HybridStartsPessimistic are the steering's state now.
	AdaptiveMode            string `json:"adaptive_mode"`
	HybridStartsPessimistic bool   `json:"hybrid_starts_pessimistic"`
}

// StrategySeries is one strategy's commits and aborts per second.
type StrategySeries struct {
	Strategy string  `json:"strategy"`
	Commits  uint64  `json:"commits"` // totals since the DB opened
	Aborts   uint64  `json:"aborts"`
	Points   []Rates `json:"points"`
}

// Rates is one interval of a strategy's history.
type Rates struct {
	Time      time.Time `json:"time"`
	Commits   float64   `json:"commits_per_sec"`
	Aborts    float64   `json:"aborts_per_sec"`
	AbortRate float64   `json:"abort_rate"` // aborts / (commits + aborts), 0 with neither
	// ConflictRate is conflicts (validation failures and deadlock victims)
	// / (commits + aborts), 0 with neither.
	ConflictRate float64 `json:"conflict_rate"`
}

// Point is one value of a series.
type Point struct {
	Time  time.Time `json:"time"`
	Value float64   `json:"value"`
}

// Mark is a labelled instant: a change of the DB shown (SetDB).
type Mark struct {
	Time    time.Time `json:"time"`
	Caption string    `json:"caption"`
}

// HotKey is one of db.HotKeys (GET api/hotkeys.json).
type HotKey struct {
	Target
	Conflicts uint64 `json:"conflicts"`
	LockWaits uint64 `json:"lock_waits"`
	Deadlocks uint64 `json:"deadlocks"`
	// Temperature and AdaptiveLocks: the key's conflict temperature, and
	// whether Adaptive transactions now lock it at read time (it switched
	// from optimistic to locked as it heated up).
	Temperature   uint32 `json:"temperature"`
	AdaptiveLocks bool   `json:"adaptive_locks"`
}

// Advice is db.Advice() (GET api/advice.json).
type Advice struct {
	Strategy string   `json:"strategy"`
	Reasons  []string `json:"reasons"`
}
