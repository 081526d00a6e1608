package txn

import (
	"github.com/txkv/txkv/deadlock"
	"github.com/txkv/txkv/wal"
)

// SyncMode says whether a commit waits for fsync (wal.SyncMode).
type SyncMode = wal.SyncMode

// DeadlockMode says when the wait-for graph is searched (deadlock.Mode).
type DeadlockMode = deadlock.Mode

// The sync modes, re-exported for Config.
const (
	SyncAlways = wal.SyncAlways
	SyncNone   = wal.SyncNone
)

// VictimPolicy says which member of a deadlock cycle is aborted
// (deadlock.VictimPolicy).
type VictimPolicy = deadlock.VictimPolicy
