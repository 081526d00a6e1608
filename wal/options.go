package wal

import (
	"fmt"
	"log/slog"
	"time"
)

// SyncMode says when a batch of log records counts as durable.
type SyncMode int

const (
	// SyncAlways (the default) fsyncs every batch before its committers return: an
	// acknowledged commit survives an OS crash or power loss.
	SyncAlways SyncMode = iota
	// SyncNone runs bbolt with NoSync: an acknowledged commit survives a crash of the process
	// (the data is in the OS page cache) but not of the OS.
	SyncNone
)

// String returns "always" or "none".
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncNone:
		return "none"
	default:
		return fmt.Sprintf("SyncMode(%d)", int(m))
	}
}

// Default option values.
const (
	DefaultOpenTimeout     = time.Second
	DefaultInitialMmapSize = 256 << 20

	DefaultCheckpointChunk      = 2048
	DefaultCheckpointChunkBytes = 4 << 20
)

// Options configures Open. A nil *Options means all defaults; zero fields mean their default.
type Options struct {
	// Sync chooses durability per batch. Default SyncAlways.
	Sync SyncMode

	// OpenTimeout bounds the wait for bbolt's exclusive file lock, so a second Open of a file
	// in use fails instead of hanging. Default 1s; negative means fail at once.
	OpenTimeout time.Duration

	// Logger receives failures (Error) and checkpoints (Debug). Default: discard.
	Logger *slog.Logger

	// BeforeCommit is a fault seam for tests: it is called inside each batch's bbolt
	// transaction just before commit. A non-nil error fails the batch exactly as a failed bbolt
	// commit would (every waiter gets ErrLogFailed, the log refuses further appends).
	BeforeCommit func() error

	// OnDurable, if set, is called by the log writer after each batch is durable (per the
	// SyncMode) and before the batch's Wait calls return, with the batch's timestamps in
	// ascending order. The slice is reused after the call. It must not block: the next batch
	// waits for it. (txkv marks the durable watermark with it.)
	OnDurable func(ts []uint64)

	// OnFailed, if set, is called once, when the log fails (a batch or a checkpoint could
	// not be committed), with the error every later Append and Wait returns. It runs before
	// the waiters of the failed batch are told. (txkv ends its durability waits with it.)
	OnFailed func(err error)

	// BeforeCheckpointCommit is the same seam for Checkpoint's transactions: it runs before
	// each chunk's commit, so a test can fail a checkpoint between chunks.
	BeforeCheckpointCommit func() error

	// NoFreelistSync sets bbolt's NoFreelistSync: the freelist is not written at each commit
	// (one page write less per batch) but rebuilt at Open by walking every page. Default
	// false, because bbolt does that walk in a goroutine of its own, where a damaged page
	// panics beyond any recover: with NoFreelistSync a corrupt file can crash the process in
	// Open instead of yielding ErrCorrupt. Measure before turning it on (see bench_test.go).
	NoFreelistSync bool

	// RetainRecords and RetainBytes keep a tail of the log behind the checkpoint for readers
	// of the log tail (txkv's Watch): a checkpoint deletes the records with ts <= its ts
	// except the newest ones, kept while fewer than RetainRecords records or fewer than
	// RetainBytes bytes are kept. Recovery still replays only records after the checkpoint.
	// Zero (the default) keeps none; negative values are invalid.
	RetainRecords int
	RetainBytes   int64

	// CheckpointChunk and CheckpointChunkBytes bound one bbolt transaction of a Checkpoint:
	// the base is written in chunks of at most CheckpointChunk entries and about
	// CheckpointChunkBytes bytes of keys and values (at least one entry), each committed on
	// its own, so the memory a checkpoint needs does not grow with its size. Until it
	// commits, a bbolt transaction holds a node (an inode per element) for every page it
	// touched and a new page for each of them: with random keys that is up to about 10 KiB
	// per entry, 20 MiB for the default 2,048; keys in sequence share their pages. Defaults
	// 2,048 entries and 4 MiB; negative values are invalid.
	CheckpointChunk      int
	CheckpointChunkBytes int64

	// freeSpace reports the free space of the file system holding a directory (ok false:
	// unknown). Default: statfs. Tests replace it to force checkpoints in steps.
	freeSpace func(dir string) (free int64, ok bool)

	// InitialMmapSize is bbolt's initial memory map size. A map larger than the file means
	// the writer rarely has to remap, and a remap has to wait for every open read
	// transaction. Default 256 MiB of address space (not memory); negative means none.
	InitialMmapSize int
}

// withDefaults returns a validated copy of o with defaults filled in.
func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	switch c.Sync {
	case SyncAlways, SyncNone:
	default:
		return c, fmt.Errorf("txkv: invalid wal sync mode %d", int(c.Sync))
	}
	if c.RetainRecords < 0 || c.RetainBytes < 0 {
		return c, fmt.Errorf("txkv: wal retention must not be negative (records %d, bytes %d)",
			c.RetainRecords, c.RetainBytes)
	}
	if c.CheckpointChunk < 0 || c.CheckpointChunkBytes < 0 {
		return c, fmt.Errorf("txkv: wal checkpoint chunk must not be negative (entries %d, bytes %d)",
			c.CheckpointChunk, c.CheckpointChunkBytes)
	}
	if c.CheckpointChunk == 0 {
		c.CheckpointChunk = DefaultCheckpointChunk
	}
	if c.CheckpointChunkBytes == 0 {
		c.CheckpointChunkBytes = DefaultCheckpointChunkBytes
	}
	switch {
	case c.OpenTimeout == 0:
		c.OpenTimeout = DefaultOpenTimeout
	case c.OpenTimeout < 0:
		// bbolt treats 0 as "wait forever"; the smallest positive timeout fails at once.
		c.OpenTimeout = time.Nanosecond
	}
	switch {
	case c.InitialMmapSize == 0:
		c.InitialMmapSize = DefaultInitialMmapSize
	case c.InitialMmapSize < 0:
		c.InitialMmapSize = 0
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.freeSpace == nil {
		c.freeSpace = diskFree
	}
	return c, nil
}
