package mvcc

// Base is the checkpointed state under the memtable (a bbolt bucket in practice; the wal
// package's *wal.Log satisfies it structurally, so mvcc never imports wal).
//
// Every call is short and self-contained: the store never holds a Base transaction open across
// calls, so a checkpoint may rewrite the base between two calls. Base must hold, for each key,
// only the newest version <= the latest checkpoint's ts, and every checkpoint ts must be <= the
// store's GCWatermark at the time it was taken (see doc.go, "Checkpoints and epochs").
type Base interface {
	// Get returns the checkpointed value and version of key. The returned slice must be owned
	// by the caller (the store hands it out as is).
	Get(key []byte) (value []byte, version uint64, ok bool, err error)
	// Scan calls fn for at most limit entries of [start, end) in ascending key order (nil start
	// or end = open); fn returning false stops the scan. fn's slices are valid only during the
	// call.
	Scan(start, end []byte, limit int, fn func(key, value []byte, version uint64) bool) error
}

// EmptyBase is the Base of an in-memory database: it holds nothing, and the store knows that
// no checkpoint will ever write to it (which lets GC drop deleted keys outright).
type EmptyBase struct{}

// Get always reports "not found".
func (EmptyBase) Get([]byte) ([]byte, uint64, bool, error) { return nil, 0, false, nil }

// Scan never calls fn.
func (EmptyBase) Scan([]byte, []byte, int, func(key, value []byte, version uint64) bool) error {
	return nil
}

// isEmptyBase reports whether b is known to hold nothing, now and forever.
func isEmptyBase(b Base) bool {
	switch b.(type) {
	case nil, EmptyBase, *EmptyBase:
		return true
	}
	return false
}

// Write is one operation of a committed transaction: a put of Value at Key, or (Delete) a
// tombstone at Key.
type Write struct {
	Key, Value []byte
	Delete     bool
}

// Entry is one key of a checkpoint: the newest version <= the checkpoint ts, a Delete for a
// tombstone (the base must then drop the key).
type Entry struct {
	Key, Value []byte
	Version    uint64
	Delete     bool
}
