package txkv

// Verify reads the whole database file and reports damage: a checkpointed
// value or version that fails its CRC-32C, a log record that fails its own,
// malformed meta values, and whatever bbolt's consistency check finds (pages
// lost or used twice, keys out of order). It returns nil, or an error for
// which errors.Is(err, ErrCorrupt) holds, joining one *CorruptError per
// damaged entry (at most 100), each naming the file, the bucket and the key
// or the log record's ts; errors.As finds the first.
//
// Reads check the same checksums as they go, so damage is never returned as
// data; Verify finds it before a read does, for instance after a restore or
// on a schedule. It runs beside normal use, in short read transactions like
// a Scan, except for bbolt's structural check, which holds one read
// transaction for its whole walk (a commit that must grow the file's memory
// map waits for it). An in-memory database has nothing to verify; a closed
// one returns ErrClosed.
//
// Over another engine (OpenEngine) it fails with ErrNotSupported.
func (db *DB) Verify() error {
	if db.x != nil {
		return notSupported("Verify")
	}
	return db.e.Verify()
}
