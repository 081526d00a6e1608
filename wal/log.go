package wal

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Log is the txkv file: the group-committed commit log, the checkpointed base and meta.
// All methods are safe for concurrent use.
//
// Lock order: ckptMu → bbolt's writer lock → mu. (The writer goroutine takes mu only outside
// or after its bbolt transaction; Append takes only mu.)
type Log struct {
	path string
	dir  string // the directory holding path: its free space decides the checkpoint scheme
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	// mu protects the append queue and the log's lifecycle state.
	mu struct {
		sync.Mutex
		queue   []*request // records waiting for the next batch, in arrival order
		closing bool       // Close was called: refuse appends, writer drains and exits
		failed  error      // first batch failure, wrapped in ErrLogFailed; sticky
		// notified: OnFailed has been called (or is being called) for failed.
		notified bool
		idle     bool // the writer is waiting on wake
	}
	wake chan struct{} // capacity 1: an append tells an idle writer there is work
	// queueLen mirrors len(mu.queue), for the writer's gather (writer.go) to poll without mu.
	queueLen atomic.Int64
	// maxGather bounds the writer's gather (defaultMaxGather; tests raise it). Set before
	// the first append.
	maxGather time.Duration
	done      chan struct{} // closed when the writer goroutine has exited

	// ckptMu serializes Checkpoint calls with each other (bbolt serializes them with the
	// writer) so that the checkpoint ts only moves forward.
	ckptMu sync.Mutex

	closed   atomic.Bool   // set by the first Close
	forget   func()        // removes the file from this process's open files (inuse.go); set by Open
	ckptTS   atomic.Uint64 // the checkpoint ts recorded in meta
	logBytes atomic.Int64  // bytes (keys + values) of records retained in the log bucket
	// baseBound caches a ts no base version may exceed (see decodeBase); it only grows.
	baseBound atomic.Uint64
	// truncated: a checkpoint has truncated the log since Open (see truncateLog).
	truncated atomic.Bool
	// damaged: a read found the file damaged; Close does not mark it clean (walk.go).
	damaged atomic.Bool

	stats struct {
		batches, records, bytes, commits, checkpoints atomic.Uint64
		checkpointTxns                                atomic.Uint64
		steppedCheckpoints                            atomic.Uint64
		maxBatch                                      atomic.Uint64
		gathers, gatherNanos                          atomic.Uint64
	}
}

func newLog(path string, db *bolt.DB, o Options) *Log {
	l := &Log{
		path: path,
		dir:  filepath.Dir(path),
		db:   db,
		opts: o,
		log:  o.Logger.With("component", "txkv/wal", "path", path),
		wake: make(chan struct{}, 1),

		maxGather: defaultMaxGather,
		done:      make(chan struct{}),
	}
	return l
}

// Path returns the file path given to Open.
func (l *Log) Path() string { return l.path }

// CheckpointTS returns the ts of the last checkpoint: every commit with ts <= it is in the
// base, and no log record with ts <= it is replayed.
func (l *Log) CheckpointTS() uint64 { return l.ckptTS.Load() }

// LogBytes returns the approximate size of the log records retained since the last
// checkpoint (keys plus encoded records), the trigger for the next checkpoint.
func (l *Log) LogBytes() int64 { return l.logBytes.Load() }

// Failed returns nil, or the error (wrapping ErrLogFailed and its cause) that poisoned the log.
func (l *Log) Failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.mu.failed
}

// Stats are cumulative counters since Open.
type Stats struct {
	Batches     uint64 // bbolt transactions that wrote log records
	Records     uint64 // commit records made durable (per the SyncMode)
	Bytes       uint64 // encoded bytes of those records
	Commits     uint64 // bbolt read-write transactions committed (batches + CheckpointTxns)
	Fsyncs      uint64 // fdatasync calls bbolt made for them: two per commit (pages, then meta) under SyncAlways, none under SyncNone
	Checkpoints uint64
	// CheckpointTxns counts the bbolt transactions checkpoints committed: one per chunk or
	// step.
	CheckpointTxns uint64
	// SteppedCheckpoints counts the checkpoints that ran in steps because free space was low
	// (see "A checkpoint in steps" in doc.go).
	SteppedCheckpoints uint64
	MaxBatch           uint64 // the largest batch written
	// Gathers counts the batches the writer held back for committers the batch before
	// released (SyncAlways only; see gather in writer.go).
	Gathers    uint64
	GatherWait time.Duration // the time those batches were held back, in all
	LogBytes   int64         // as LogBytes()
	// Queued is the number of records enqueued and not yet taken into a batch: they wait
	// for the batch being written (if any) to finish.
	Queued int
}

// MeanBatch is the mean number of records per batch, 0 before the first batch.
func (s Stats) MeanBatch() float64 {
	if s.Batches == 0 {
		return 0
	}
	return float64(s.Records) / float64(s.Batches)
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	s := Stats{
		Batches:        l.stats.batches.Load(),
		Records:        l.stats.records.Load(),
		Bytes:          l.stats.bytes.Load(),
		Commits:        l.stats.commits.Load(),
		Checkpoints:    l.stats.checkpoints.Load(),
		CheckpointTxns: l.stats.checkpointTxns.Load(),

		SteppedCheckpoints: l.stats.steppedCheckpoints.Load(),
		MaxBatch:           l.stats.maxBatch.Load(),
		Gathers:            l.stats.gathers.Load(),
		GatherWait:         time.Duration(l.stats.gatherNanos.Load()),
		LogBytes:           l.logBytes.Load(),
	}
	if l.opts.Sync == SyncAlways {
		s.Fsyncs = 2 * s.Commits
	}
	l.mu.Lock()
	s.Queued = len(l.mu.queue)
	l.mu.Unlock()
	return s
}

// Close completes every queued append, stops the writer, marks the file clean under
// SyncAlways (walk.go: the next Open need not walk the base's page tree) unless the log
// failed, and closes the file. Later calls return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.mu.closing {
		l.mu.Unlock()
		return ErrClosed
	}
	l.mu.closing = true
	l.mu.Unlock()
	l.signal()
	<-l.done
	// Readers that check closed after this see ErrClosed; readers already inside bbolt finish
	// first, because bbolt's Close waits for open read transactions.
	l.closed.Store(true)
	l.ckptMu.Lock() // wait out a running checkpoint
	defer l.ckptMu.Unlock()
	err := l.markClean()
	if cerr := l.db.Close(); err == nil {
		err = cerr
	}
	if l.forget != nil {
		l.forget() // after bbolt released its lock: a new Open may now succeed
	}
	return err
}

// readErr maps bbolt's closed-database error to ErrClosed.
func (l *Log) readErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}
