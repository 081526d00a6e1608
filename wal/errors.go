package wal

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Each is defined once here and re-exported by the root package, so errors.Is
// works whichever layer produced the error.
var (
	// ErrCorrupt reports a database file that is not a txkv file, has another format version,
	// or holds a record that fails its checksum or its length checks. It is returned wrapped in
	// a *CorruptError that names the file and what failed.
	ErrCorrupt = errors.New("txkv: corrupt database file")

	// ErrLogFailed reports that a write or fsync of the log failed. After the first failure the
	// log refuses every further append: after a failed fsync the kernel may already have dropped
	// the dirty pages, so a later successful fsync proves nothing (PostgreSQL's "fsyncgate").
	ErrLogFailed = errors.New("txkv: log write failed; the database refuses further writes")

	// ErrClosed is returned by every operation on a closed Log (and by the whole of txkv for a
	// closed DB).
	ErrClosed = errors.New("txkv: database is closed")

	// ErrCompacted is returned when a reader of the log tail asks for a timestamp whose records
	// a checkpoint has already deleted.
	ErrCompacted = errors.New("txkv: requested version is no longer in the log")

	// ErrInUse is returned by Open for a file another open database holds: at once when that
	// database is in this process, after Options.OpenTimeout when it is in another (bbolt's
	// file lock).
	ErrInUse = errors.New("txkv: database file is in use")

	// ErrInvalidRecord is returned by Append for a record the log cannot store (a zero or
	// already checkpointed timestamp, or an encoding larger than bbolt's value limit). It is a
	// caller error and does not poison the log.
	ErrInvalidRecord = errors.New("txkv: invalid log record")
)

// CorruptError describes what is corrupt and where. errors.Is(err, ErrCorrupt) is true for it.
type CorruptError struct {
	Path   string // the database file
	Bucket string // "log", "base", "meta", or "" for the file as a whole
	Key    []byte // the offending key in Bucket, if any
	TS     uint64 // the commit timestamp of the offending log record, if any
	Reason string // what check failed
	Err    error  // underlying cause, if any (a bbolt error, a recovered panic)
}

func (e *CorruptError) Error() string {
	msg := ErrCorrupt.Error()
	if e.Path != "" {
		msg += " " + strconv.Quote(e.Path)
	}
	switch {
	case e.Bucket == "log" && e.TS != 0:
		msg += fmt.Sprintf(": log record ts %d", e.TS)
	case e.Bucket != "" && e.Key != nil:
		msg += fmt.Sprintf(": bucket %q key %q", e.Bucket, e.Key)
	case e.Bucket != "":
		msg += fmt.Sprintf(": bucket %q", e.Bucket)
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the underlying cause, if any.
func (e *CorruptError) Unwrap() error { return e.Err }

// logFailed wraps cause so that errors.Is matches both ErrLogFailed and the cause.
func logFailed(cause error) error {
	return fmt.Errorf("%w: %w", ErrLogFailed, cause)
}
