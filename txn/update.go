package txn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/txkv/txkv/lockmgr"
)

// Update runs fn in a read-write transaction and commits it. A retryable
// error (IsRetryable: a conflict or a deadlock) from fn or from Commit makes
// Update roll back, wait (exponential backoff with full jitter) and run fn
// again, up to the retry policy's MaxAttempts. Any other error, and a panic
// (re-raised), rolls back. Commit and Rollback inside fn return ErrTxManaged.
// fn must not keep tx once it returns: each attempt's Tx is recycled (the
// root package's handles detect a kept one and return ErrTxDone).
//
// Retries are planned so that contention cannot exhaust them:
//
//   - No doomed retries: a retry after a conflict starts from a snapshot
//     that includes the commit it lost to (it waits for that commit to be
//     visible if it is not yet), so it does not read the old version again.
//   - Escalation: from attempt EscalateAfter+1 on (RetryPolicy; by default
//     the 3rd on a file, the 9th in memory), a retry first takes, in key
//     order, the locks the failed attempt needed — exclusive on the keys
//     it wrote or was waiting to write, shared on the keys it read — and
//     reads them under those locks (the Hybrid rule, applied to every
//     strategy), and is as old as its first attempt when a deadlock victim
//     is chosen (the youngest loses). A transaction that keeps losing on the
//     same keys then queues for them instead of losing again: with the
//     default policy a read-modify-write of one hot key does not fail under
//     contention.
//
// Hybrid transactions run their first attempt optimistically; after a
// conflict, the retry runs pessimistically and first locks, in key order, the
// keys the failed attempt read (shared) and wrote (exclusive). The DB
// remembers how Hybrid's first attempts fare (steer.Hybrid): once
// more than one in ten recently failed, new Hybrid work starts pessimistic,
// and a burst of optimistic starts now and then notices when contention
// drops.
// Adaptive transactions run the arm the DB's measurements favour
// (adaptiveStart, steer.Adaptive) and feed those measurements.
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
	escalateAfter := db.escalateAfter(policy)
	hybrid, adaptive := db.steered(opts)
	var next nextAttempt
	var measured bool // report the first attempt's outcome to hybrid
	if hybrid != nil {
		var pessimistic bool
		if pessimistic, measured = hybrid.Start(); pessimistic {
			next.plan = &retryPlan{pessimistic: true} // start pessimistic, nothing to prelock yet
		}
	}
	var age uint64 // the first attempt's ID, carried by every retry
	for attempt := 1; ; attempt++ {
		var err error
		var id uint64
		next, id, err = db.attempt(ctx, opts, next, attempt >= escalateAfter, fn)
		if age == 0 {
			age = id
		}
		if err == nil || IsRetryable(err) {
			if attempt == 1 && measured {
				hybrid.FirstAttempt(err != nil)
			}
			if adaptive != nil {
				adaptive.Observe(steerEnv{db}, err == nil)
			}
		}
		if err == nil || !IsRetryable(err) || attempt >= policy.MaxAttempts {
			return err
		}
		db.stats.retries.Add(1)
		if err := sleepBackoff(ctx, policy, attempt); err != nil {
			return err
		}
		if err := db.waitLostTo(ctx, err); err != nil {
			return err
		}
		if attempt >= escalateAfter {
			next.plan = withAge(next.plan, age)
		}
	}
}

// escalateAfter resolves the policy's EscalateAfter for this database.
func (db *DB) escalateAfter(p RetryPolicy) int {
	switch {
	case p.EscalateAfter == EscalateNever:
		return math.MaxInt
	case p.EscalateAfter > 0:
		return p.EscalateAfter
	case db.log != nil:
		return EscalateAfterDurable
	}
	return EscalateAfterInMemory
}

// withAge returns plan (a new one if nil) carrying age.
func withAge(plan *retryPlan, age uint64) *retryPlan {
	if plan == nil {
		plan = &retryPlan{}
	}
	plan.age = age
	return plan
}

// waitLostTo waits until the commit a conflict lost to is visible, so the
// retry's snapshot includes it.
func (db *DB) waitLostTo(ctx context.Context, err error) error {
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.lostTo <= db.store.ReadTS() {
		return nil
	}
	return db.store.WaitVisible(ctx, ce.lostTo)
}

// nextAttempt is what a failed Update attempt tells the next one: the plan
// begin applies (a Hybrid-style pessimistic retry, an escalated retry, or
// Adaptive's hot written keys) and MOCC's retrospective lock list, taken in
// key order before fn runs.
type nextAttempt struct {
	plan *retryPlan
	rll  []prelock
}

func (db *DB) retryPolicy(opts *TxOptions) RetryPolicy {
	if opts != nil && opts.Retry != nil {
		return opts.Retry.withDefaults()
	}
	return *db.cfg.Retry
}

// attempt runs fn once and, when it fails retryably, says how the next
// attempt should run. When fn fails otherwise, what it read must be durable
// before its error is reported (settle): the error may rest on a version a
// crash could still take back.
func (db *DB) attempt(ctx context.Context, opts *TxOptions, cur nextAttempt, escalate bool, fn func(*Tx) error) (nextAttempt, uint64, error) {
	tx, err := db.begin(ctx, opts, true, cur.plan)
	if err != nil {
		return cur, 0, err // a prelock lost a deadlock: the same plan again
	}
	if len(cur.rll) > 0 && tx.run == runHotLocking {
		if err := tx.lockPrelocks(cur.rll); err != nil {
			return cur, tx.id, err // the transaction is rolled back; a deadlock is retried the same way
		}
	}
	id := tx.id
	next, err := db.finishAttempt(tx, runManaged(tx, fn), escalate)
	db.recycle(tx) // nothing below may touch tx: another Update may be running it
	return next, id, err
}

// finishAttempt commits the attempt if fn succeeded, or rolls it back and,
// if it may be retried, plans the next attempt.
func (db *DB) finishAttempt(tx *Tx, err error, escalate bool) (nextAttempt, error) {
	if err != nil && !IsRetryable(err) {
		return nextAttempt{}, tx.rollbackSettled(err)
	}
	if err == nil {
		err = tx.commit()
	}
	if err == nil {
		return nextAttempt{}, nil
	}
	var next nextAttempt
	if IsRetryable(err) {
		next = db.planRetry(tx, err, escalate)
	}
	_ = tx.rollback()
	return next, err
}

// planRetry is where a failed attempt's retry is planned (escalate: the
// retry is past the policy's EscalateAfter). Hybrid: the retry
// runs pessimistically and first locks, in key order, what the failed
// attempt read (S) and wrote (X). Adaptive: the same when the DB-wide
// conflict rate is in the guide's hybrid band (5–20%); below it the retry
// stays optimistic with MOCC's retrospective lock list: the keys of the
// failed attempt that are hot now are locked first, in key order (so hot-key
// locks taken by retries never deadlock with each other), exclusively those
// it wrote (so a read-modify-write never upgrades S to X). Every strategy:
// past EscalateAfter failed attempts, the retry takes its locks first.
func (db *DB) planRetry(tx *Tx, err error, escalate bool) nextAttempt {
	next := tx.policy().retry(db, tx)
	if !escalate {
		return next
	}
	return db.escalate(tx, err, next)
}

// escalate makes the next attempt take, first and in key order, the locks
// the failed attempts needed — the Hybrid rule, applied to every strategy:
// X on what it wrote and on the lock it was waiting for when it was chosen
// as a deadlock victim (a pessimistic read-modify-write dies upgrading S to
// X on a key it has not written yet), S on what it only read (for a
// pessimistic attempt, the keys it held locks on), and what earlier
// escalated attempts locked (an attempt that died early touched less than
// its predecessor; a set that only grows is complete after a few rounds). It
// keeps its strategy (a Hybrid plan stays pessimistic), and its age (Update)
// makes it the older party in any deadlock it still meets.
//
// Exclusive on everything, as if it had read all FOR UPDATE, was measured
// too: it took a case or two off the worst of the three-account storm test,
// and cost Pessimistic and Hybrid a third of the in-memory contention
// sweep's rate at hot=10 (more transactions wait for the escalated one).
func (db *DB) escalate(tx *Tx, err error, next nextAttempt) nextAttempt {
	pre := append(tx.touched(), wantedLock(tx.id, err)...)
	if tx.plan != nil {
		pre = append(pre, tx.plan.pre...)
	}
	pre = sortPrelocks(pre)
	plan := &retryPlan{pre: pre}
	if next.plan != nil {
		plan.pessimistic, plan.hotX = next.plan.pessimistic, next.plan.hotX
	}
	return nextAttempt{plan: plan}
}

// wantedLock is the point lock the failed attempt needed and did not get:
// the one a deadlock victim was waiting for, or the key a Snapshot-isolation
// write lost to a newer version (first-updater-wins) before it was buffered.
func wantedLock(id uint64, err error) []prelock {
	var ce *ConflictError
	if errors.As(err, &ce) && ce.Reason == ReasonUpdateConflict {
		return []prelock{{key: ce.Key, mode: lockmgr.Exclusive}}
	}
	var de *lockmgr.DeadlockError
	if !errors.As(err, &de) {
		return nil
	}
	for _, e := range de.Cycle {
		if e.Waiter == id && !e.Range {
			return []prelock{{key: e.Key, mode: e.Mode}}
		}
	}
	return nil
}

// retrospective builds MOCC's retrospective lock list (Wang & Kimura, VLDB
// 2016, §4.2) from a failed Adaptive attempt: its keys whose temperature has
// reached the threshold, in key order, X if written. Cold keys stay
// optimistic. The written ones also go to the plan's hotX, so a later read
// of them takes X again (re-entrant) rather than reading the snapshot.
func (db *DB) retrospective(tx *Tx) nextAttempt {
	var rll []prelock
	var hotX [][]byte // the hot keys it wrote: locked X, and read under that lock
	for _, p := range tx.touched() {
		if db.isHot(p.key) {
			rll = append(rll, p)
			if p.mode == lockmgr.Exclusive {
				hotX = append(hotX, p.key)
			}
		}
	}
	return nextAttempt{plan: &retryPlan{hotX: hotX}, rll: rll}
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

var errNilFn = errors.New("txkv: nil function")
