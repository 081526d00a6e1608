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
}

// Defaults of etcd's server limits.
const (
	DefaultMaxTxnOps       = 128
	DefaultMaxRequestBytes = 3 << 19 // 1.5 MiB
	maxKeySize             = 32 << 10
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
	// records is the lease of new transaction records (record.go).
	records recordLeases
}

type counters struct {
	commits, aborts, conflicts, retries, reads, writes, watchers atomic.Int64
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
	ctx, cancel := context.WithCancel(context.Background())
	return &eng{cli: cli, ks: keyspace{prefix: o.Prefix}, opts: o, ctx: ctx, cancel: cancel}, nil
}

func (e *eng) live() error {
	if e.closed.Load() {
		return txkv.ErrClosed
	}
	return nil
}

// Close ends watches and waits for them; later calls return ErrClosed.
// Transactions begun before fail with ErrClosed at their next call.
func (e *eng) Close() error {
	if e.closed.Swap(true) {
		return txkv.ErrClosed
	}
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

// Begin starts a transaction. Only Optimistic (and StrategyDefault, which
// means it) is supported so far; other strategies fail with
// ErrNotSupported.
func (e *eng) Begin(ctx context.Context, opts *txkv.TxOptions) (engine.Tx, error) {
	return e.begin(ctx, opts, false)
}

func (e *eng) begin(ctx context.Context, opts *txkv.TxOptions, managed bool) (*tx, error) {
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
	if o.Strategy != txkv.Optimistic {
		return nil, fmt.Errorf("%w: etcdkv runs %v transactions only so far, not %v", txkv.ErrNotSupported, txkv.Optimistic, o.Strategy)
	}
	if o.Isolation == txkv.IsolationDefault {
		o.Isolation = txkv.Serializable
	}
	if o.Isolation != txkv.Serializable && o.Isolation != txkv.Snapshot {
		return nil, fmt.Errorf("%w: isolation %v", txkv.ErrInvalidOption, o.Isolation)
	}
	return newTx(e, ctx, o, managed), nil
}

// Update runs fn in a transaction and commits it, retrying conflicts with
// backoff (Options.Retry, or opts.Retry).
func (e *eng) Update(ctx context.Context, opts *txkv.TxOptions, fn func(engine.Tx) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", txkv.ErrInvalidOption)
	}
	p := e.retryPolicy(opts)
	for attempt := 1; ; attempt++ {
		err := e.attempt(ctx, opts, fn)
		if err == nil || !txkv.IsRetryable(err) || attempt >= p.MaxAttempts {
			return err
		}
		e.stats.retries.Add(1)
		if err := sleepBackoff(ctx, p, attempt); err != nil {
			return err
		}
	}
}

func (e *eng) attempt(ctx context.Context, opts *txkv.TxOptions, fn func(engine.Tx) error) error {
	t, err := e.begin(ctx, opts, true)
	if err != nil {
		return err
	}
	if err := runManaged(t, fn); err != nil {
		t.rollback()
		return err
	}
	return t.commit()
}

// View runs fn in a read-only transaction: reads at one revision, no
// validation, no waits.
func (e *eng) View(ctx context.Context, fn func(engine.Tx) error) error {
	if fn == nil {
		return fmt.Errorf("%w: nil function", txkv.ErrInvalidOption)
	}
	t, err := e.begin(ctx, &txkv.TxOptions{ReadOnly: true}, true)
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
// retries, reads, writes); the local engine's lock, log and memtable
// figures are zero.
func (e *eng) Stats() txkv.Stats {
	s := &e.stats
	return txn.Stats{
		Commits: uint64(s.commits.Load()), Aborts: uint64(s.aborts.Load()),
		Conflicts: uint64(s.conflicts.Load()), Retries: uint64(s.retries.Load()),
		Reads: uint64(s.reads.Load()), Writes: uint64(s.writes.Load()),
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
