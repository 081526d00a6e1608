package txkv

import (
	"context"
	"iter"

	"github.com/txkv/txkv/engine"

	"github.com/txkv/txkv/txn"
)

// Event is one write of a committed transaction, as Watch delivers it: the key, its new
// value (nil when Deleted), and Version, the transaction's commit timestamp — the version
// GetVersioned reports for the key afterwards. The writes of one transaction share a
// Version and come in key order. Key and Value belong to the caller.
//
// Fields (changefeed.Event):
//
//	Key, Value []byte
//	Version    uint64
//	Deleted    bool
type Event = txn.Event

// Watch streams the committed writes to keys under prefix (nil or empty: every key), in
// commit order, like a MongoDB change stream or an etcd watch. fromVersion 0 starts after
// the commits visible when Watch is called; any other value delivers every write with
// Version >= fromVersion, so a consumer that processed every event of Version v resumes with
// Watch(ctx, prefix, v+1) — across a Close and reopen too, for a file DB.
//
// Events come from a bounded ring of recent commits, and for a file DB from the log, which
// keeps Options.WatchRetainRecords records behind each checkpoint. A version no longer held
// yields ErrCompacted; an in-memory DB holds only its ring (Options.WatchRingEvents). A slow
// consumer never blocks commits: it falls behind and catches up from the log, or, when what
// it needs is gone, gets ErrCompacted.
//
// The iteration runs in the consumer's goroutine and holds nothing between events but a
// registration, released when the loop ends: break, ctx done (ctx.Err() is yielded), Close
// (ErrClosed is yielded) or an error.
func (db *DB) Watch(ctx context.Context, prefix []byte, fromVersion uint64) iter.Seq2[Event, error] {
	if db.x != nil {
		return db.x.Watch(ctx, prefix, fromVersion)
	}
	return db.e.Watch(ctx, prefix, fromVersion)
}

// Watchers returns the number of Watch iterations running now.
func (db *DB) Watchers() int {
	if db.x != nil {
		if in, ok := db.x.(engine.Inspector); ok {
			return in.Watchers()
		}
		return 0
	}
	return db.e.Watchers()
}
