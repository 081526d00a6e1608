package txkv

// CloseWithoutCheckpoint closes db leaving the log as a crash would.
func CloseWithoutCheckpoint(db *DB) error { return db.e.CloseWithoutCheckpoint() }
