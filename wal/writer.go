package wal

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv/internal/crashpoint"
)

// request is one queued append. Requests are pooled: the encoded buffer and the done channel
// are reused, so a steady-state Append allocates nothing.
type request struct {
	key  [8]byte // big-endian ts: the log bucket key
	ts   uint64
	data []byte     // the encoded record
	done chan error // capacity 1; the writer sends exactly one result
}

// maxPooledBuf keeps one huge record from pinning its buffer in the pool forever.
const maxPooledBuf = 64 << 10

var requestPool = sync.Pool{New: func() any { return &request{done: make(chan error, 1)} }}

func putRequest(req *request) {
	if cap(req.data) > maxPooledBuf {
		req.data = nil
	}
	requestPool.Put(req)
}

// Append queues r for the group-commit writer and blocks until its batch is durable (per the
// SyncMode) or has failed: Enqueue, then Wait.
func (l *Log) Append(r *Record) error {
	p, err := l.Enqueue(r)
	if err != nil {
		return err
	}
	return p.Wait()
}

// Pending is a record queued by Enqueue, not yet known to be durable. Wait must be called
// exactly once. The zero Pending stands for nothing to wait for: its Wait returns nil.
type Pending struct{ req *request }

// Wait blocks until the record's batch is durable (per the SyncMode) or has failed, and
// returns the batch's outcome: nil, or ErrLogFailed wrapping the cause.
func (p Pending) Wait() error {
	if p.req == nil {
		return nil
	}
	err := <-p.req.done
	putRequest(p.req)
	return err
}

// Enqueue queues r for the group-commit writer and returns at once; Wait on the result learns
// when it is durable. The record is encoded here, in the caller's goroutine, so the single
// writer does only bbolt work. Records become durable in the order they were enqueued (a
// batch is everything queued since the previous one was taken), which is what lets a
// committer release its locks before its record is durable: whoever saw its writes enqueues
// later, so lands in the same batch or a later one. r.TS must be above CheckpointTS and
// unique; Enqueue does not retain r.
//
// Errors: ErrClosed after Close; ErrLogFailed (wrapping the cause) if an earlier batch
// failed; ErrInvalidRecord for a record the log cannot store.
func (l *Log) Enqueue(r *Record) (Pending, error) {
	if r == nil {
		return Pending{}, fmt.Errorf("%w: nil record", ErrInvalidRecord)
	}
	if ck := l.ckptTS.Load(); r.TS <= ck {
		return Pending{}, fmt.Errorf("%w: ts %d is not above the checkpoint ts %d", ErrInvalidRecord, r.TS, ck)
	}
	req := requestPool.Get().(*request)
	req.ts = r.TS
	binary.BigEndian.PutUint64(req.key[:], r.TS)
	req.data = AppendRecord(req.data[:0], r)
	if len(req.data) > bolt.MaxValueSize {
		n := len(req.data)
		putRequest(req)
		return Pending{}, fmt.Errorf("%w: encoded record is %d bytes, more than bbolt's %d", ErrInvalidRecord, n, bolt.MaxValueSize)
	}
	if err := l.enqueue(req); err != nil {
		putRequest(req)
		return Pending{}, err
	}
	return Pending{req: req}, nil
}

// enqueue adds req to the queue and wakes the writer if it is idle.
func (l *Log) enqueue(req *request) error {
	l.mu.Lock()
	switch {
	case l.mu.closing:
		l.mu.Unlock()
		return ErrClosed
	case l.mu.failed != nil:
		err := l.mu.failed
		l.mu.Unlock()
		return err
	}
	l.mu.queue = append(l.mu.queue, req)
	l.queueLen.Store(int64(len(l.mu.queue)))
	wake := l.mu.idle
	l.mu.idle = false
	l.mu.Unlock()
	if wake {
		l.signal()
	}
	return nil
}

// signal wakes the writer without blocking; a pending wake-up is as good as a new one.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run is the single log-writer goroutine. Each turn it takes everything queued so far as one
// batch and writes it in one bbolt transaction; records that arrive meanwhile wait for the
// next turn. There is no timer: while a batch is being fsynced the next one is forming, so
// the batch size adapts to the load with no added latency at low load.
func (l *Log) run() {
	defer close(l.done)
	// A memory fault while writing a damaged file becomes a failed batch, not a crash.
	debug.SetPanicOnFault(true)
	var batch []*request
	var tss []uint64 // the batch's timestamps, for OnDurable
	var g gathering
	for {
		// Let the committers that are runnable right now finish their commits and join this
		// batch, rather than waking the writer one at a time: with many committers on few
		// cores the writer otherwise takes each record alone and spends a bbolt transaction
		// on it (measured without fsync, bank of 10,000 accounts, 16 goroutines: 1.5 records
		// per batch, and twice the throughput with the yield). Not a timer: with nothing else
		// runnable it returns at once, so a lone committer waits for nobody.
		runtime.Gosched()
		l.mu.Lock()
		for len(l.mu.queue) == 0 && !l.mu.closing {
			l.mu.idle = true
			l.mu.Unlock()
			<-l.wake
			l.mu.Lock()
		}
		if len(l.mu.queue) == 0 { // closing and drained
			l.mu.Unlock()
			return
		}
		if l.opts.Sync == SyncAlways && l.mu.failed == nil && !l.mu.closing {
			l.mu.Unlock()
			l.gather(g)
			l.mu.Lock()
		}
		batch, l.mu.queue = l.mu.queue, batch[:0]
		l.queueLen.Store(0)
		failed := l.mu.failed
		l.mu.Unlock()

		err := failed
		start := time.Now()
		if err == nil {
			err = l.writeBatch(batch)
		}
		g.lastWrite = time.Since(start)
		if err == nil && l.opts.OnDurable != nil {
			tss = tss[:0]
			for _, req := range batch { // sorted by writeBatch
				tss = append(tss, req.ts)
			}
			l.opts.OnDurable(tss)
		}
		// Everyone queued now, and everyone this batch releases, may join the next one.
		g.expect = int(l.queueLen.Load()) + len(batch)
		for _, req := range batch {
			req.done <- err
		}
		clear(batch) // drop references to pooled requests
	}
}

// gathering is what the writer knows when it decides whether to hold a batch back: see
// gather.
type gathering struct {
	expect    int           // records queued when the last batch ended, plus those it released
	lastWrite time.Duration // how long the last batch took to write
}

// gather holds the next batch back, under SyncAlways only, while the committers the last
// batch released are coming back. Closed-loop committers otherwise split into two groups that
// alternate: those released by batch k run their next transaction while batch k+1 (the
// others) is being synced, so each waits out two fsync pairs per commit and a batch holds
// half of them. The writer yields (runtime.Gosched, which also runs the released
// committers if they are waiting for this core) until the queue holds g.expect records, and
// stops early when no record arrived for an eighth of the last batch's write time, or after
// half of it in all — and never after more than l.maxGather: a write that took long because it
// waited for a checkpoint's bbolt transaction or a stalled disk says nothing about how soon
// committers come back. So it waits only for committers that are on their way (a lone
// committer, or one that does not come back, costs nothing or one gap), and never longer
// than the fsync it saves is worth. Under SyncNone a batch's write is CPU work of its own,
// and spinning would take the CPU the committers need, so the writer does not wait.
//
// Measured (bench/peers, bank of 10,000 accounts, 16 goroutines, fsync): 9.7 → 15 records
// per batch, +17…25% transfers/s.
func (l *Log) gather(g gathering) {
	n := l.queueLen.Load()
	if int(n) >= g.expect {
		return
	}
	l.stats.gathers.Add(1)
	limit, gap := min(g.lastWrite/2, l.maxGather), min(g.lastWrite/8, l.maxGather/4)
	start := time.Now()
	defer func() { l.stats.gatherNanos.Add(uint64(time.Since(start))) }()
	last := start
	for int(n) < g.expect {
		runtime.Gosched()
		now := time.Now()
		if m := l.queueLen.Load(); m != n {
			n, last = m, now
		}
		if now.Sub(last) > gap || now.Sub(start) > limit {
			return
		}
	}
}

// defaultMaxGather bounds one gather (Log.maxGather): a few times what returning committers
// need (tens to hundreds of microseconds), a fraction of a slow disk's fsync pair.
const defaultMaxGather = 2 * time.Millisecond

// writeBatch writes batch in one bbolt transaction. On failure it poisons the log and
// returns the ErrLogFailed-wrapped error.
func (l *Log) writeBatch(batch []*request) (err error) {
	// Near-sequential keys, sorted, let bbolt fill pages in order (FillPercent 1 below).
	slices.SortFunc(batch, func(a, b *request) int { return cmp.Compare(a.ts, b.ts) })
	var n int64
	err = l.update(l.opts.BeforeCommit, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLog)
		b.FillPercent = 1.0
		for _, req := range batch {
			if err := b.Put(req.key[:], req.data); err != nil {
				return err
			}
			n += int64(len(req.key) + len(req.data))
		}
		crashpoint.Hit(crashpoint.WALBeforeCommit)
		return nil
	})
	if err != nil {
		return l.fail(err)
	}
	crashpoint.Hit(crashpoint.WALAfterCommit)
	l.logBytes.Add(n)
	l.stats.batches.Add(1)
	l.stats.records.Add(uint64(len(batch)))
	l.stats.bytes.Add(uint64(n) - 8*uint64(len(batch)))
	if m := uint64(len(batch)); m > l.stats.maxBatch.Load() {
		l.stats.maxBatch.Store(m) // only the writer stores
	}
	return nil
}

// update runs fn in a bbolt read-write transaction, calls hook just before commit, and commits.
// Any failure here (fn's, the hook's, the commit's, or a bbolt panic) is returned; the caller
// decides whether it poisons the log.
func (l *Log) update(hook func() error, fn func(tx *bolt.Tx) error) (err error) {
	defer guard(l.path, "", &err, nil)
	tx, err := l.db.Begin(true)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		// Also on a panic, which guard (deferred earlier, so run later) turns into err.
		if !committed {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if hook != nil {
		if err = hook(); err != nil {
			return err
		}
	}
	committed = true // bbolt has released the tx whether Commit succeeds or not
	if err = tx.Commit(); err != nil {
		return err
	}
	l.stats.commits.Add(1)
	return nil
}

// fail records the first failure (sticky) and returns the error every waiter gets.
func (l *Log) fail(cause error) error {
	l.mu.Lock()
	if l.mu.failed == nil {
		l.mu.failed = logFailed(cause)
		l.log.Error("log write failed; refusing further writes", "err", cause)
	}
	err := l.mu.failed
	first := err != nil && !l.mu.notified
	l.mu.notified = true
	l.mu.Unlock()
	if first && l.opts.OnFailed != nil {
		l.opts.OnFailed(err)
	}
	return err
}
