package txn

// Watch: the engine's side of the change-stream hub (package changefeed, whose doc teaches
// the algorithm). Commit publishes each commit's writes to the hub between Install and
// Done (commit.go); the hub releases them to watchers once durable, in ts order.

import (
	"context"
	"iter"

	"github.com/txkv/txkv/changefeed"
	"github.com/txkv/txkv/wal"
)

// Event is one write of a committed transaction, as Watch delivers it (changefeed.Event).
type Event = changefeed.Event

// Defaults of the Watch options in Config.
const (
	DefaultWatchRingEvents    = changefeed.DefaultRingEvents // events the ring keeps
	DefaultWatchRingBytes     = changefeed.DefaultRingBytes  // key and value bytes the ring keeps
	DefaultWatchRetainRecords = 10000                        // log records kept behind the checkpoint
)

// newWatchHub starts the hub of db, whose store has been recovered: everything up to the
// read watermark is history, served from the log.
func newWatchHub(db *DB) *changefeed.Hub {
	cfg := changefeed.Config{
		Watermark:  db.store,
		Horizon:    db.store.ReadTS(),
		RingEvents: db.cfg.WatchRingEvents,
		RingBytes:  db.cfg.WatchRingBytes,
	}
	if db.log != nil { // a nil *wal.Log must not become a non-nil Tail
		cfg.Tail = db.log
	}
	return changefeed.New(cfg)
}

// Watchers returns the number of running Watch iterations.
func (db *DB) Watchers() int { return db.watch.Watchers() }

// Watch returns the committed writes under prefix (nil or empty: every key) in commit
// order, starting at version fromVersion, or, for 0, after the commits visible now. The
// iteration ends when the consumer breaks out, when ctx ends (yielding ctx.Err()), when the
// DB closes (wal.ErrClosed) or on an error: wal.ErrCompacted when the versions it needs are
// no longer retained (in the log behind the checkpoint, or in an in-memory database's ring).
// To resume after the last event e the consumer processed in full, Watch from e.Version+1.
// Each range over the result starts afresh at the same version.
func (db *DB) Watch(ctx context.Context, prefix []byte, fromVersion uint64) iter.Seq2[Event, error] {
	if fromVersion == 0 {
		fromVersion = db.store.ReadTS() + 1
	}
	seq := db.watch.Watch(ctx, prefix, fromVersion)
	return func(yield func(Event, error) bool) {
		if db.isClosed() {
			yield(Event{}, wal.ErrClosed)
			return
		}
		seq(yield)
	}
}
