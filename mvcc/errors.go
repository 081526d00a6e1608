package mvcc

import "errors"

// ErrSnapshotClosed is returned by reads through a Snapshot (or an Iterator of it) after
// Snapshot.Close: the snapshot no longer pins an epoch, so its reads could be wrong.
var ErrSnapshotClosed = errors.New("txkv: snapshot closed")

// ErrSnapshotTooOld is returned when a read falls through to the Base and finds a version newer
// than the snapshot: a checkpoint was taken past an active snapshot, which the checkpoint
// protocol forbids (upTo must be <= GCWatermark). It reports a broken invariant instead of
// returning a wrong value.
var ErrSnapshotTooOld = errors.New("txkv: snapshot too old: base holds a newer version")

// ErrUnknownTS is returned by WaitVisible for a timestamp the oracle never allocated: waiting
// for it would never end.
var ErrUnknownTS = errors.New("txkv: timestamp not allocated by the oracle")
