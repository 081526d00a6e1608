package txn

import "github.com/txkv/txkv/steer"

// steering is the DB's pair of memories (package steer): how Hybrid's
// optimistic first attempts fare, and which arm Adaptive finds cheapest.
type steering struct {
	hybrid   steer.Hybrid
	adaptive steer.Adaptive
}

// steered returns the memory that learns from an Update with these
// options (the strategy table's memory column). Read-only work is not
// steered.
func (db *DB) steered(opts *TxOptions) (*steer.Hybrid, *steer.Adaptive) {
	if opts != nil && opts.ReadOnly {
		return nil, nil
	}
	s := db.requestedStrategy(opts)
	if !s.valid() || policies[s].memory == nil {
		return nil, nil // an invalid strategy fails at Begin
	}
	return policies[s].memory(db)
}

// steerEnv is what Adaptive's steering reads from the DB (steer.Env).
type steerEnv struct{ db *DB }

func (e steerEnv) LockWaits() uint64     { return e.db.locks.Stats().Waits }
func (e steerEnv) ConflictRate() float64 { return e.db.window.Rate() }
