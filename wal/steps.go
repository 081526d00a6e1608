package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv/internal/crashpoint"
)

// A checkpoint in steps: the low-space checkpoint (see "A checkpoint in steps" in doc.go).
// When the free space is below what the chunked checkpoint may need, Checkpoint moves the
// checkpoint forward one step at a time, oldest records first, each step one bbolt
// transaction that applies a few records read back from the log, moves meta's checkpoint ts
// to the last of them and deletes the log up to there — a complete checkpoint at that ts, so
// the file is consistent after every step and grows by about one step, not by the log.

// lowSpaceSlack is the free space, beyond twice the log and two chunks, below which
// Checkpoint runs in steps.
const lowSpaceSlack = 1 << 20

// lowSpace reports whether the free space available to the file is below what a chunked
// checkpoint of the current log may need, and then returns that free space. The need: the
// base may grow by as much as the log holds (every record a new key) plus the pages each
// chunk copies, before the log's pages are freed at the end. Unknown free space (statfs not
// supported) means enough.
func (l *Log) lowSpace() (free int64, low bool) {
	fsFree, ok := l.opts.freeSpace(l.dir)
	if !ok {
		return 0, false
	}
	free = fsFree + l.freeInFile()
	need := 2*l.logBytes.Load() + 2*l.opts.CheckpointChunkBytes + lowSpaceSlack
	return free, free < need
}

// freeInFile is the space of the free pages inside the file, which bbolt reuses before it
// grows the file.
func (l *Log) freeInFile() int64 {
	return int64(l.db.Stats().FreePageN) * int64(l.db.Info().PageSize)
}

// stepLimits bound one step.
type stepLimits struct {
	keys  int   // distinct keys written to the base
	bytes int64 // log record bytes read (and deleted)
}

// limitsFor sizes steps for free bytes of free space. A step that writes k keys and reads b
// bytes of records may need up to about 2k pages (each key's leaf copied, with the branch
// pages above it shared among many keys) and b bytes of new base data before its commit
// frees anything; a quarter of the free space per step leaves room for bbolt's freelist and
// the meta update. Steps never exceed a chunk, and always take at least one record.
func (l *Log) limitsFor(free int64) stepLimits {
	page := int64(l.db.Info().PageSize)
	return stepLimits{
		keys:  int(min(max(free/(8*page), 1), int64(l.opts.CheckpointChunk))),
		bytes: min(max(free/4, 1), l.opts.CheckpointChunkBytes),
	}
}

// checkpointInSteps moves the checkpoint to ts in steps (see above). The caller holds ckptMu.
func (l *Log) checkpointInSteps(ts uint64, free int64) error {
	lim := l.limitsFor(free)
	steps := 0
	for l.ckptTS.Load() < ts || steps == 0 {
		if err := l.step(ts, lim); err != nil {
			return err
		}
		steps++
	}
	l.stats.checkpoints.Add(1)
	l.stats.steppedCheckpoints.Add(1)
	l.log.Debug("checkpoint in steps", "ts", ts, "steps", steps, "free_bytes", free)
	return nil
}

// step runs one step: one transaction that applies the next records after the checkpoint ts
// (up to ts and lim) to the base, moves the checkpoint ts to the last of them (to ts itself
// when none is left below it) and truncates the log up to there.
func (l *Log) step(ts uint64, lim stepLimits) error {
	if err := l.checkpointable(ts); err != nil {
		return err
	}
	var (
		cut      uint64
		freed    int64
		inputErr error
	)
	err := l.update(l.opts.BeforeCheckpointCommit, func(tx *bolt.Tx) error {
		var entries []BaseEntry
		entries, cut, inputErr = l.stepEntries(tx, ts, lim)
		if inputErr == nil {
			base := tx.Bucket(bucketBase)
			base.FillPercent = 1.0 // pages split full: the base takes what the data takes
			inputErr = applyEntries(base, entries)
		}
		if inputErr != nil {
			return inputErr
		}
		crashpoint.Hit(crashpoint.WALMidCheckpoint)
		var err error
		freed, err = l.advance(tx, cut, false) // space first: no retained tail
		return err
	})
	if err := l.checkpointErr(inputErr, err); err != nil {
		return err
	}
	l.advanced(cut, freed)
	l.stats.checkpointTxns.Add(1)
	return nil
}

// stepEntries reads the records after the checkpoint ts, in ts order, up to ts and lim, and
// returns the newest write of each key among them, in key order, and the step's cut: the last
// record's ts, or ts itself if no record <= ts remains after them. Keys and values alias the
// transaction's pages, which stay valid until it ends (bbolt copies what it keeps).
func (l *Log) stepEntries(tx *bolt.Tx, ts uint64, lim stepLimits) ([]BaseEntry, uint64, error) {
	var (
		entries []BaseEntry
		index   = map[string]int{} // key → its entry
		size    int64
		cut     uint64
		slab    []Op
		r       Record
	)
	c := tx.Bucket(bucketLog).Cursor()
	for k, v := c.Seek(putU64(l.ckptTS.Load() + 1)); ; k, v = c.Next() {
		if k == nil {
			return sortedEntries(entries), ts, nil
		}
		rts, err := l.logKey(tx, k, v)
		if err != nil {
			return nil, 0, err
		}
		if rts > ts {
			return sortedEntries(entries), ts, nil
		}
		if cut != 0 && (size >= lim.bytes || len(entries) >= lim.keys) {
			return sortedEntries(entries), cut, nil
		}
		if err := decodeRecord(v, &r, &slab); err != nil {
			return nil, 0, l.recordCorrupt(rts, err)
		}
		if r.TS != rts {
			return nil, 0, &CorruptError{Path: l.path, Bucket: "log", TS: rts, Reason: fmt.Sprintf("record says ts %d", r.TS)}
		}
		entries = addOps(entries, index, rts, r.Ops)
		size += int64(len(k) + len(v))
		cut = rts
	}
}

// logKey checks a log element's key (an 8-byte ts) and size and returns the ts.
func (l *Log) logKey(tx *bolt.Tx, k, v []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, &CorruptError{Path: l.path, Bucket: "log", Key: bytes.Clone(k), Reason: "log key is not an 8-byte ts"}
	}
	if err := l.checkElem(tx, "log", k, v); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(k), nil
}

// addOps records a commit's writes, a later write of a key replacing the earlier one.
func addOps(entries []BaseEntry, index map[string]int, ts uint64, ops []Op) []BaseEntry {
	for _, op := range ops {
		e := BaseEntry{Key: op.Key, Value: op.Value, Version: ts, Delete: op.Delete}
		if i, ok := index[string(op.Key)]; ok {
			entries[i] = e
			continue
		}
		index[string(op.Key)] = len(entries)
		entries = append(entries, e)
	}
	return entries
}

// sortedEntries puts entries in key order, so a step touches the base's pages in order.
func sortedEntries(entries []BaseEntry) []BaseEntry {
	slices.SortFunc(entries, func(a, b BaseEntry) int { return bytes.Compare(a.Key, b.Key) })
	return entries
}

// checkpointErr maps the outcome of a checkpoint transaction: an invalid entry or a corrupt
// record rolls back and is returned as is (the file is unchanged, the log stays usable); any
// other failure (the commit's write or fsync) poisons the log.
func (l *Log) checkpointErr(inputErr, err error) error {
	if inputErr != nil {
		return inputErr
	}
	if err == nil {
		return nil
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		return err
	}
	return l.fail(fmt.Errorf("checkpoint: %w", err))
}
