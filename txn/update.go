package txn

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"
)

// Update runs fn in a read-write transaction and commits it. A retryable
// error (IsRetryable: a conflict or a deadlock) from fn or from Commit makes
// Update roll back, wait (exponential backoff with full jitter) and run fn
// again, up to the retry policy's MaxAttempts. Any other error, and a panic
// (re-raised), rolls back. Commit and Rollback inside fn return ErrTxManaged.
//
// Hybrid transactions run their first attempt optimistically; after a
// conflict, the retry runs pessimistically and first locks, in key order, the
// keys the failed attempt read (shared) and wrote (exclusive).
func (db *DB) Update(ctx context.Context, opts *TxOptions, fn func(tx *Tx) error) error {
	if fn == nil {
		return errNilFn
	}
	if opts != nil && opts.Retry != nil {
		if err := opts.Retry.validate(); err != nil {
			return err
		}
	}
	policy := db.retryPolicy(opts)
	var plan *retryPlan
	for attempt := 1; ; attempt++ {
		var err error
		plan, err = db.attempt(ctx, opts, plan, fn)
		if err == nil || !IsRetryable(err) || attempt >= policy.MaxAttempts {
			return err
		}
		db.stats.retries.Add(1)
		if err := sleepBackoff(ctx, policy, attempt); err != nil {
			return err
		}
	}
}

func (db *DB) retryPolicy(opts *TxOptions) RetryPolicy {
	if opts != nil && opts.Retry != nil {
		return opts.Retry.withDefaults()
	}
	return db.cfg.Retry
}

// attempt runs fn once and, when it fails retryably, says how the next
// attempt should run.
func (db *DB) attempt(ctx context.Context, opts *TxOptions, plan *retryPlan, fn func(*Tx) error) (*retryPlan, error) {
	tx, err := db.begin(ctx, opts, true, plan)
	if err != nil {
		return nil, err
	}
	err = runManaged(tx, fn)
	if err == nil {
		err = tx.commit()
	}
	if err == nil {
		return nil, nil
	}
	var next *retryPlan
	if IsRetryable(err) {
		next = db.planRetry(tx)
	}
	_ = tx.rollback()
	return next, err
}

// planRetry is where Hybrid and Adaptive learn from a failed attempt.
// Hybrid: the retry runs pessimistically and first locks, in key order, what
// the failed attempt read (S) and wrote (X). Adaptive: the same when the
// DB-wide conflict rate is in the guide's hybrid band (5–20%); below it the
// retry stays optimistic, and the keys that conflicted are hot now, so it
// locks them at read time — exclusively those the failed attempt wrote.
func (db *DB) planRetry(tx *Tx) *retryPlan {
	switch {
	case tx.requested == Hybrid:
		return &retryPlan{pre: tx.touched()}
	case tx.requested == Adaptive && tx.adaptive:
		if db.window.Rate() >= lowConflict {
			return &retryPlan{pre: tx.touched()}
		}
		return &retryPlan{hotX: tx.writtenKeys()}
	}
	return nil
}

// runManaged calls fn, rolling back and re-panicking if it panics.
func runManaged(tx *Tx, fn func(*Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			_ = tx.rollback()
			panic(r)
		}
	}()
	return fn(tx)
}

// sleepBackoff waits a uniformly random time in [0, min(MaxDelay,
// BaseDelay·2^(attempt-1))] — "full jitter" — or until ctx is done.
func sleepBackoff(ctx context.Context, p RetryPolicy, attempt int) error {
	d := time.Duration(rand.Int64N(int64(backoffCeiling(p, attempt)) + 1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoffCeiling is min(MaxDelay, BaseDelay·2^(attempt-1)), overflow-safe.
func backoffCeiling(p RetryPolicy, attempt int) time.Duration {
	ceiling := p.BaseDelay << min(attempt-1, 30)
	if ceiling <= 0 || ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	return ceiling
}

// View runs fn in a read-only transaction at the read watermark.
func (db *DB) View(ctx context.Context, fn func(tx *Tx) error) error {
	if fn == nil {
		return errNilFn
	}
	tx, err := db.begin(ctx, &TxOptions{ReadOnly: true}, true, nil)
	if err != nil {
		return err
	}
	if err := runManaged(tx, fn); err != nil {
		_ = tx.rollback()
		return err
	}
	return tx.commit() // read-only: releases the snapshot, counts as a commit
}

var errNilFn = errors.New("txkv: nil function")
