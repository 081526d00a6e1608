package etcdkv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/engine"
	"github.com/txkv/txkv/txn"
)

// Options configure an etcdkv DB. The zero value is valid except for
// Prefix, which must not be empty.
type Options struct {
	// Prefix is where the database's keyspace starts in etcd ("app/").
	// Every key the DB writes starts with it; two DBs with the same prefix
	// are handles of one database.
	Prefix string
	// MaxTxnOps is the server's --max-txn-ops (default 128): a commit
	// needing more compares or writes fails with txkv.ErrTxnTooLarge
	// before it is sent.
	MaxTxnOps int
	// MaxRequestBytes is the server's --max-request-bytes (default
	// 1.5 MiB): a Put whose key and value exceed it fails with
	// txkv.ErrValueTooLarge.
	MaxRequestBytes int
	// RecordTTL is the TTL of the lease transaction records are bound to
	// (default DefaultRecordTTL, 10 minutes; at least 5 s). A record lives
	// between RecordTTL/2 and RecordTTL: an ambiguous commit can be
	// decided for RecordTTL/2 after it was sent (doc.go).
	RecordTTL time.Duration
	// Retry is Update's default retry policy. Zero fields: 10 attempts,
	// backoff 1 ms .. 100 ms with full jitter (a round trip, not a mutex).
	Retry txkv.RetryPolicy
	// SessionTTL is the TTL of the handle's session lease, to which every
	// lock entry of its transactions is bound: a process that dies holding
	// locks loses them this long after its last keep-alive. Zero: 10 s;
	// otherwise at least 1 s, rounded up to whole seconds (etcd's unit).
	SessionTTL time.Duration
	// LockTimeout bounds lock waits when neither TxOptions.LockTimeout nor
	// WaitTimeout says otherwise. Zero: 5 s, as locally. txkv.Forever waits
	// without a bound: deadlocks are still detected, those among one
	// handle's transactions at once and those spanning handles by the
	// detector (unless DeadlockInterval is DeadlockDetectionOff), but a
	// finite bound is the default, as locally.
	LockTimeout time.Duration
	// DeadlockInterval is how often the detector of deadlocks across
	// handles reads the wait-for edges, on the one handle elected to run it
	// (doc.go, "Deadlocks across handles"). Zero: 100 ms; at least 10 ms.
	// Waits publish their edges once they last 50 ms, so a deadlock across
	// handles is found about 50 ms to 50 ms + DeadlockInterval after it
	// formed.
	// DeadlockDetectionOff (any negative value): this handle neither
	// publishes its waits nor stands for election; give every handle of a
	// database the same setting, since a cycle through a handle that does
	// not publish is not found (its lock timeouts still end it).
	DeadlockInterval time.Duration
}

// DeadlockDetectionOff as Options.DeadlockInterval turns the detection of
// deadlocks across handles off: they end by lock timeout.
const DeadlockDetectionOff time.Duration = -1

// Defaults of etcd's server limits.
const (
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
	DefaultSessionTTL      = 10 * time.Second
	DefaultLockTimeout     = 5 * time.Second
	// DefaultDeadlockInterval is Options.DeadlockInterval's default.
	DefaultDeadlockInterval = 100 * time.Millisecond
	minDeadlockInterval     = 10 * time.Millisecond
	maxKeySize              = 32 << 10
	// minRecordTTL keeps a record's lease above etcd's minimum lease TTL
	// (1.5 election timeouts) on any sane configuration.
	minRecordTTL = 5 * time.Second
)

// Open returns a *txkv.DB whose transactions run on etcd through cli,
// under opts.Prefix. The caller keeps cli and closes it after the DB.
func Open(cli *clientv3.Client, opts *Options) (*txkv.DB, error) {
	e, err := newEngine(cli, opts)
	if err != nil {
		return nil, err
	}
	if _, err := e.session(); err != nil {
		e.cancel()
		return nil, err
	}
	e.startDetector()
	return txkv.OpenEngine(e), nil
}

// eng is the engine.Engine over etcd.
type eng struct {
	cli    *clientv3.Client
	ks     keyspace
	opts   Options
	ctx    context.Context // cancelled by Close: ends watches
	cancel context.CancelFunc
	closed atomic.Bool
	ids    atomic.Uint64
	wg     sync.WaitGroup // running watches
	stats  counters
	reg    registry // this handle's lock holders and waiters
	// records is the lease of new transaction records (record.go).
	records recordLeases

	smu  sync.Mutex           // protects sess
	sess *concurrency.Session // the lease lock entries are bound to; replaced once expired

	// The detector of deadlocks across handles (detector.go).
	detCtx    context.Context // cancelled by Close before the session's revocation: ends the campaign
	detCancel context.CancelFunc
	detWG     sync.WaitGroup // the campaign's goroutine
	leading   atomic.Bool    // this handle is the elected detector
}

type counters struct {
	commits, aborts, conflicts, retries, reads, writes, watchers    atomic.Int64
	deadlocks, lockTimeouts, lockWaits, notAvailable, lockWaitNanos atomic.Int64
}

var _ engine.Engine = (*eng)(nil)

func newEngine(cli *clientv3.Client, opts *Options) (*eng, error) {
	if cli == nil {
		return nil, fmt.Errorf("%w: etcdkv.Open: nil client", txkv.ErrInvalidOption)
	}
	if opts == nil || opts.Prefix == "" {
		return nil, fmt.Errorf("%w: etcdkv.Open: Options.Prefix is required", txkv.ErrInvalidOption)
	}
	o := *opts
	if o.MaxTxnOps <= 0 {
		o.MaxTxnOps = DefaultMaxTxnOps
	}
	if o.MaxRequestBytes <= 0 {
		o.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if o.RecordTTL <= 0 {
		o.RecordTTL = DefaultRecordTTL
	}
	o.RecordTTL = max(o.RecordTTL, minRecordTTL)
	if err := resolveLockOptions(&o); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &eng{cli: cli, ks: keyspace{prefix: o.Prefix}, opts: o, ctx: ctx, cancel: cancel,
		reg: registry{txs: map[uint64]*regTx{}}}
	e.detCtx, e.detCancel = context.WithCancel(ctx)
	return e, nil
}

// resolveLockOptions validates and defaults SessionTTL and LockTimeout.
func resolveLockOptions(o *Options) error {
	switch {
	case o.SessionTTL == 0:
		o.SessionTTL = DefaultSessionTTL
	case o.SessionTTL < time.Second:
		return fmt.Errorf("%w: etcdkv.Open: Options.SessionTTL %v: at least 1s (etcd leases count whole seconds)",
			txkv.ErrInvalidOption, o.SessionTTL)
	case o.SessionTTL > 24*time.Hour:
		return fmt.Errorf("%w: etcdkv.Open: Options.SessionTTL %v: at most 24h (a dead process would hold its locks that long)",
			txkv.ErrInvalidOption, o.SessionTTL)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	switch {
	case o.DeadlockInterval == 0:
		o.DeadlockInterval = DefaultDeadlockInterval
	case o.DeadlockInterval < 0:
		o.DeadlockInterval = DeadlockDetectionOff
	case o.DeadlockInterval < minDeadlockInterval:
		o.DeadlockInterval = minDeadlockInterval // a round is a round trip: no busy loop
	}
	return nil
}

// session returns the handle's live session, starting a new one if the
// last one's lease expired (the locks bound to it are gone; transactions
// that held them fail at commit, see fencing in commit.go).
func (e *eng) session() (*concurrency.Session, error) {
	e.smu.Lock()
	defer e.smu.Unlock()
	if err := e.live(); err != nil {
		return nil, err
	}
	if e.sess != nil {
		select {
		case <-e.sess.Done():
		default:
			return e.sess, nil
		}
	}
	ttl := int((e.opts.SessionTTL + time.Second - 1) / time.Second)
	s, err := concurrency.NewSession(e.cli, concurrency.WithTTL(ttl), concurrency.WithContext(e.ctx))
	if err != nil {
		return nil, fmt.Errorf("txkv: etcdkv: starting the lock session: %w", e.mapErr(err))
	}
	e.sess = s
	return s, nil
}

// dropSession forgets s, whose lease is gone, if it is still the current
// session: the next request starts a new one.
func (e *eng) dropSession(s *concurrency.Session) {
	e.smu.Lock()
	defer e.smu.Unlock()
	if e.sess == s {
		s.Orphan() // ends its keep-alive
		e.sess = nil
	}
}

// closeSession revokes the session's lease: every lock entry of this
// handle vanishes in one request.
func (e *eng) closeSession() {
	e.smu.Lock()
	defer e.smu.Unlock()
	if e.sess != nil {
		e.sess.Close() // its error: the lease is already gone, or expires within the TTL
		e.sess = nil
	}
}

func (e *eng) live() error {
	if e.closed.Load() {
		return txkv.ErrClosed
	}
	return nil
}

// Close resigns the detector's election (if it stands), ends watches and
// waits for them; later calls return ErrClosed. Transactions begun before
// fail with ErrClosed at their next call.
func (e *eng) Close() error {
	if e.closed.Swap(true) {
		return txkv.ErrClosed
	}
	e.stopDetector()
	e.closeSession()
	e.cancel()
	e.wg.Wait()
	return nil
}

func (e *eng) checkKey(key []byte) error {
	if len(key) == 0 || len(key) > maxKeySize {
		return fmt.Errorf("%w: %d bytes (1 to %d)", txkv.ErrInvalidKey, len(key), maxKeySize)
	}
	return nil
}

func (e *eng) checkValue(key, value []byte) error {
	if n := len(e.ks.data(key)) + len(value); n > e.opts.MaxRequestBytes {
		return fmt.Errorf("%w: key and value are %d bytes, over etcd's request limit of %d (--max-request-bytes)",
			txkv.ErrValueTooLarge, n, e.opts.MaxRequestBytes)
	}
	return nil
}

// Begin starts a transaction of any strategy: Optimistic (the default),
// Pessimistic (strict 2PL over etcd lock entries), Hybrid, and Adaptive,
// which runs as Hybrid (doc.go).
func (e *eng) Begin(ctx context.Context, opts *txkv.TxOptions) (engine.Tx, error) {
	return e.begin(ctx, opts, false, nil, time.Now())
}

// begin starts a transaction; born is when its first attempt started (its
// age, for the choice of a deadlock victim across handles).
func (e *eng) begin(ctx context.Context, opts *txkv.TxOptions, managed bool, plan *retryPlan, born time.Time) (*tx, error) {
	if err := e.live(); err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	var o txkv.TxOptions
	if opts != nil {
		o = *opts
	}
	if o.Strategy == txkv.StrategyDefault {
		o.Strategy = txkv.Optimistic
	}
	switch o.Strategy {
	case txkv.Optimistic, txkv.Pessimistic, txkv.Hybrid, txkv.Adaptive:
	default:
		return nil, fmt.Errorf("%w: strategy %v", txkv.ErrInvalidOption, o.Strategy)
	}
	if o.Isolation == txkv.IsolationDefault {
		o.Isolation = txkv.Serializable
	}
	if o.Isolation != txkv.Serializable && o.Isolation != txkv.Snapshot {
		return nil, fmt.Errorf("%w: isolation %v", txkv.ErrInvalidOption, o.Isolation)
	}
	t := newTx(e, ctx, o, managed)
	t.born = born
	if plan != nil && !o.ReadOnly {
		if err := t.runPlan(plan); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Update runs fn in a transaction and commits it, retrying conflicts,
// deadlocks and lost locks with backoff (Options.Retry, or opts.Retry). A
// Hybrid (or Adaptive) attempt that failed is retried as strict 2PL that
// first locks what it touched (hybridPlan). An optimistic attempt whose
// commit failed a validation is retried at once, at the revision where it
// failed and with what its commit read (retryPlan.seen); if that retry
// fails too, the next one backs off and reads afresh — after a backoff the
// values would be stale, and a retry that kept them failed again and again
// (up to 34 attempts in a row on a hot bank, each backing off longer).
func (e *eng) Update(ctx context.Context, opts *txkv.TxOptions, fn func(engine.Tx) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", txkv.ErrInvalidOption)
	}
	p := e.retryPolicy(opts)
	var plan *retryPlan
	born := time.Now()
	for attempt := 1; ; attempt++ {
		next, err := e.attempt(ctx, opts, fn, plan, born)
		if err == nil || !txkv.IsRetryable(err) || attempt >= p.MaxAttempts {
			return err
		}
		usedSeen := plan != nil && plan.seen != nil
		plan = next
		e.stats.retries.Add(1)
		if plan != nil && plan.seen != nil {
			if !usedSeen {
				continue // at once: what the failed commit read is current now, not after a backoff
			}
			plan = nil // it failed again: back off, then read afresh
		}
		if err := sleepBackoff(ctx, p, attempt); err != nil {
			return err
		}
	}
}

// attempt runs one attempt; on failure it also returns the plan of the
// next one.
func (e *eng) attempt(ctx context.Context, opts *txkv.TxOptions, fn func(engine.Tx) error, plan *retryPlan, born time.Time) (*retryPlan, error) {
	t, err := e.begin(ctx, opts, true, plan, born)
	if err != nil {
		return plan, err
	}
	if err := runManaged(t, fn); err != nil {
		t.rollback()
		return t.nextPlan(), err
	}
	if err := t.commit(); err != nil {
		return t.nextPlan(), err
	}
	return nil, nil
}

// View runs fn in a read-only transaction: reads at one revision, no
// validation, no waits.
func (e *eng) View(ctx context.Context, fn func(engine.Tx) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", txkv.ErrInvalidOption)
	}
	t, err := e.begin(ctx, &txkv.TxOptions{ReadOnly: true}, true, nil, time.Now())
	if err != nil {
		return err
	}
	if err := runManaged(t, fn); err != nil {
		t.rollback()
		return err
	}
	return t.commit()
}

// runManaged calls fn; a panic rolls back and is re-raised.
func runManaged(t *tx, fn func(engine.Tx) error) error {
	defer func() {
		if r := recover(); r != nil {
			t.rollback()
			panic(r)
		}
	}()
	return fn(t)
}

func (e *eng) retryPolicy(opts *txkv.TxOptions) txkv.RetryPolicy {
	p := e.opts.Retry
	if opts != nil && opts.Retry != nil {
		p = *opts.Retry
	}
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 10
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 100 * time.Millisecond
	}
	return p
}

// sleepBackoff sleeps a full-jitter exponential backoff, or returns
// ctx.Err().
func sleepBackoff(ctx context.Context, p txkv.RetryPolicy, attempt int) error {
	ceiling := p.BaseDelay << min(attempt-1, 20)
	if ceiling <= 0 || ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	timer := time.NewTimer(rand.N(ceiling) + 1)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// Stats reports the counters etcdkv keeps (commits, aborts, conflicts,
// retries, reads, writes; of this handle's locks: waits and their time,
// timeouts, NOWAIT refusals, deadlock victims); the local engine's log
// and memtable figures are zero.
func (e *eng) Stats() txkv.Stats {
	s := &e.stats
	return txn.Stats{
		Commits: uint64(s.commits.Load()), Aborts: uint64(s.aborts.Load()),
		Conflicts: uint64(s.conflicts.Load()), Retries: uint64(s.retries.Load()),
		Reads: uint64(s.reads.Load()), Writes: uint64(s.writes.Load()),
		Deadlocks: uint64(s.deadlocks.Load()), LockTimeouts: uint64(s.lockTimeouts.Load()),
		LockWaits: uint64(s.lockWaits.Load()), NotAvailable: uint64(s.notAvailable.Load()),
		LockWaitTime: time.Duration(s.lockWaitNanos.Load()),
	}
}

// mapErr turns an etcd client error into txkv's: ErrClosed after Close,
// the ctx's error, the limits as ErrTxnTooLarge and ErrValueTooLarge.
func (e *eng) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case e.closed.Load():
		return txkv.ErrClosed
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return mapLimitErr(err, e.opts)
}
