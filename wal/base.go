package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv/internal/crashpoint"
)

// scanChunk is how many entries Scan copies per bbolt read transaction. Copying in chunks
// keeps each read transaction short: fn (user code) never runs while one is open, so a slow
// fn cannot stall the writer's remap.
const scanChunk = 256

// BaseEntry is one change Checkpoint applies to the base.
type BaseEntry struct {
	Key     []byte
	Value   []byte
	Version uint64 // the commit ts that wrote Value
	Delete  bool   // remove Key from the base
}

// view runs fn in a short bbolt read transaction, turning bbolt panics and memory faults on a
// damaged file into a *CorruptError and a closed database into ErrClosed.
func (l *Log) view(bucket string, fn func(tx *bolt.Tx) error) (err error) {
	if l.closed.Load() {
		return ErrClosed
	}
	return l.read(bucket, fn)
}

// read is view without the closed check (Close's own reads).
func (l *Log) read(bucket string, fn func(tx *bolt.Tx) error) (err error) {
	defer l.noteDamage(&err) // runs after guard has made a fault an error
	defer guard(l.path, bucket, &err, nil)
	restore := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(restore)
	return l.readErr(l.db.View(fn))
}

// noteDamage remembers that a read found the file damaged: Close then does not mark it clean.
func (l *Log) noteDamage(errp *error) {
	var ce *CorruptError
	if *errp != nil && errors.As(*errp, &ce) {
		l.damaged.Store(true)
	}
}

// Get returns the checkpointed value and version of key. ok is false if the base does not
// hold key. The returned value is a copy the caller owns.
func (l *Log) Get(key []byte) (value []byte, version uint64, ok bool, err error) {
	err = l.view("base", func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBase).Get(key)
		if v == nil {
			return nil
		}
		if err := l.checkElem(tx, "base", key, v); err != nil {
			return err
		}
		val, ver, err := l.decodeBase(tx, key, v)
		if err != nil {
			return err
		}
		value, version, ok = bytes.Clone(val), ver, true
		if value == nil {
			value = []byte{}
		}
		return nil
	})
	if err != nil {
		return nil, 0, false, err
	}
	return value, version, ok, nil
}

// Scan calls fn for up to limit base entries with start <= key < end, in ascending key order
// (start nil: from the first key; end nil: no upper bound; limit <= 0: no limit). fn's slices
// are valid only during the call; fn returns false to stop. Entries are read in chunks, each
// in its own short read transaction, so a Scan is not one consistent snapshot if a Checkpoint
// runs meanwhile; callers that need one (mvcc) read versions, not the base's current state.
func (l *Log) Scan(start, end []byte, limit int, fn func(key, value []byte, version uint64) bool) error {
	var (
		arena   []byte    // keys and values of the current chunk, reused across chunks
		ents    []scanEnt // offsets into arena
		after   []byte    // resume strictly after this key
		emitted int
	)
	for {
		want := scanChunk
		if limit > 0 && limit-emitted < want {
			want = limit - emitted
		}
		arena, ents = arena[:0], ents[:0]
		var more bool
		err := l.view("base", func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketBase).Cursor()
			k, v := seekFrom(c, start, after)
			for ; k != nil; k, v = c.Next() {
				if end != nil && bytes.Compare(k, end) >= 0 {
					return nil
				}
				if len(ents) == want {
					more = true
					return nil
				}
				if err := l.checkElem(tx, "base", k, v); err != nil {
					return err
				}
				val, ver, err := l.decodeBase(tx, k, v)
				if err != nil {
					return err
				}
				ents = append(ents, scanEnt{k: len(arena), v: len(arena) + len(k), end: len(arena) + len(k) + len(val), ver: ver})
				arena = append(append(arena, k...), val...)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !fn(arena[e.k:e.v:e.v], arena[e.v:e.end:e.end], e.ver) {
				return nil
			}
		}
		emitted += len(ents)
		if !more || (limit > 0 && emitted >= limit) {
			return nil
		}
		last := ents[len(ents)-1]
		after = append(after[:0], arena[last.k:last.v]...)
	}
}

type scanEnt struct {
	k, v, end int
	ver       uint64
}

// seekFrom positions c at the first key >= start, or strictly after `after` when resuming.
func seekFrom(c *bolt.Cursor, start, after []byte) (k, v []byte) {
	switch {
	case after != nil:
		k, v = c.Seek(after)
		if k != nil && bytes.Equal(k, after) {
			k, v = c.Next()
		}
	case start != nil:
		k, v = c.Seek(start)
	default:
		k, v = c.First()
	}
	return k, v
}

// Checkpoint applies entries to the base (Delete removes the key), records ts as the
// checkpoint ts in meta, and deletes the log records with ts <= ts (except the retained tail).
// ts must not be below CheckpointTS, and entries must hold, for every key changed since the
// previous checkpoint, its newest version <= ts. entries must not call back into the Log, and
// the slices of the entries it yields must stay unchanged until Checkpoint returns (a chunk
// of them is gathered before it is written).
//
// The base is written in chunks, one bbolt transaction each of at most
// Options.CheckpointChunk entries or CheckpointChunkBytes bytes, so that the memory bbolt
// needs for a transaction (a node per touched page, an inode per entry, the pages it spills)
// is bounded by the chunk, not by the checkpoint. The meta checkpoint ts and the log
// truncation go in the last transaction only; until it commits, the base may hold some
// versions newer than CheckpointTS, which is safe (see "Checkpoint in chunks" in doc.go).
//
// An error from the entries (an invalid key) rolls back the current chunk and leaves the log
// usable, with CheckpointTS unchanged; a failed commit poisons the log like a failed batch,
// since the file's state is then unknown. Either way the chunks committed before stay in the
// base, and a later checkpoint simply writes them again.
//
// When the free space is too low for that scheme (it needs the base written before the log
// is freed), Checkpoint runs in steps instead (steps.go): entries are not used, the records
// are read back from the log in ts order, and each step's transaction moves CheckpointTS
// forward and truncates behind it, keeping no retained tail. A failure between steps leaves
// CheckpointTS at the last step's cut.
func (l *Log) Checkpoint(ts uint64, entries iter.Seq[BaseEntry]) error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	if err := l.checkpointable(ts); err != nil {
		return err
	}
	if budget, low := l.lowSpace(); low {
		return l.checkpointInSteps(ts, budget)
	}
	chunk, err := l.writeChunks(ts, entries)
	if err != nil {
		return err
	}
	var freed int64
	err = l.commitChunk(ts, chunk, func(tx *bolt.Tx) error {
		var err error
		freed, err = l.advance(tx, ts, true)
		return err
	})
	if err != nil {
		return err
	}
	l.advanced(ts, freed)
	l.stats.checkpoints.Add(1)
	l.log.Debug("checkpoint", "ts", ts, "freed_log_bytes", freed)
	return nil
}

// writeChunks commits entries to the base in full chunks and returns the last, partial
// chunk, which the caller commits together with the meta update.
func (l *Log) writeChunks(ts uint64, entries iter.Seq[BaseEntry]) ([]BaseEntry, error) {
	var (
		chunk []BaseEntry // not copied: see entries' contract above
		size  int64
	)
	if entries == nil {
		return nil, nil
	}
	for e := range entries {
		chunk = append(chunk, e)
		size += int64(baseHeaderLen + len(e.Key) + len(e.Value))
		if len(chunk) < l.opts.CheckpointChunk && size < l.opts.CheckpointChunkBytes {
			continue
		}
		if err := l.commitChunk(ts, chunk, nil); err != nil {
			return nil, err
		}
		clear(chunk) // let the entries' memory go
		chunk, size = chunk[:0], 0
	}
	return chunk, nil
}

// advance records ts as the checkpoint ts in meta and truncates the log up to it (keeping
// the retained tail, if asked), inside the transaction that writes the checkpoint's last base
// entries. It returns the bytes that leave LogBytes.
func (l *Log) advance(tx *bolt.Tx, ts uint64, keepTail bool) (int64, error) {
	if err := tx.Bucket(bucketMeta).Put(metaCheckpoint, putU64(ts)); err != nil {
		return 0, err
	}
	keep := retention{records: l.opts.RetainRecords, bytes: l.opts.RetainBytes}
	if !keepTail {
		keep = retention{}
	}
	return l.truncateLog(tx, ts, keep)
}

// retention is how much of the log behind the checkpoint a truncation keeps.
type retention struct {
	records int
	bytes   int64
}

// advanced updates the in-memory state after advance's transaction committed.
func (l *Log) advanced(ts uint64, freed int64) {
	l.ckptTS.Store(ts)
	l.logBytes.Add(-freed)
	l.truncated.Store(true)
}

// checkpointable returns why a checkpoint at ts cannot run (now), or nil.
func (l *Log) checkpointable(ts uint64) error {
	if l.closed.Load() {
		return ErrClosed
	}
	if err := l.Failed(); err != nil {
		return err
	}
	if cur := l.ckptTS.Load(); ts < cur {
		return fmt.Errorf("txkv: checkpoint ts %d is below the current checkpoint ts %d", ts, cur)
	}
	return nil
}

// commitChunk applies chunk to the base in one bbolt transaction, runs last in it (the final
// chunk's meta update and truncation; nil for the others) and commits. It first checks that
// the log is still open and usable: a checkpoint stops between chunks when Close or a failed
// batch intervenes. An invalid entry rolls back and is returned as is; a failed commit
// poisons the log.
func (l *Log) commitChunk(ts uint64, chunk []BaseEntry, last func(tx *bolt.Tx) error) error {
	if err := l.checkpointable(ts); err != nil {
		return err
	}
	var inputErr error
	err := l.update(l.opts.BeforeCheckpointCommit, func(tx *bolt.Tx) error {
		if inputErr = applyEntries(tx.Bucket(bucketBase), chunk); inputErr != nil {
			return inputErr
		}
		crashpoint.Hit(crashpoint.WALMidCheckpoint)
		if last == nil {
			return nil
		}
		return last(tx)
	})
	if err := l.checkpointErr(inputErr, err); err != nil {
		return err
	}
	l.stats.checkpointTxns.Add(1)
	return nil
}

// applyEntries puts chunk into the base bucket, each value in the checksummed base format
// (basefmt.go). bbolt copies each key but keeps a reference to each value until the
// transaction commits, so the stored values are laid out in one buffer per chunk.
func applyEntries(b *bolt.Bucket, chunk []BaseEntry) error {
	n := 0
	for _, e := range chunk {
		if !e.Delete {
			n += baseHeaderLen + len(e.Value)
		}
	}
	buf := make([]byte, 0, n)
	for _, e := range chunk {
		var err error
		switch {
		case len(e.Key) == 0:
			err = errors.New("empty key")
		case e.Delete:
			err = b.Delete(e.Key)
		default:
			v := len(buf)
			buf = appendBase(buf, e.Key, e.Version, e.Value)
			err = b.Put(e.Key, buf[v:len(buf):len(buf)])
		}
		if err != nil {
			return fmt.Errorf("txkv: checkpoint entry %q: %w", e.Key, err)
		}
	}
	return nil
}

// truncateLog deletes the log records with ts <= upTo, except the newest of them that keep
// holds for readers of the log tail (Watch: Options.RetainRecords and RetainBytes, or none
// in a checkpoint in steps), records in meta the highest ts it has ever deleted (the tail horizon, see tail.go), and returns the
// bytes that leave LogBytes — the size of the log after the checkpoint, which triggers the
// next one. Those are the records in (previous checkpoint, upTo], deleted or retained: a
// retained record no longer counts, and one retained earlier was subtracted already. The
// first truncation after Open also subtracts the tail retained before it, which Open counted.
//
//	log: [ ... deleted ... | retained tail (ts <= upTo) | after the checkpoint (ts > upTo) ]
//	                       ^ horizon = newest deleted ts          LogBytes counts only these
func (l *Log) truncateLog(tx *bolt.Tx, upTo uint64, keep retention) (int64, error) {
	countFrom := l.ckptTS.Load()
	if !l.truncated.Load() {
		countFrom = 0
	}
	c := tx.Bucket(bucketLog).Cursor()
	freed, cut, err := l.retainedTail(c, upTo, countFrom, keep)
	if err != nil || cut == 0 {
		if err == nil {
			err = l.raiseHorizon(tx, 0)
		}
		return freed, err
	}
	// Delete the prefix up to cut: list the keys first, then Seek to each and
	// delete it. (Next after Delete skips elements in bbolt; re-seeking to First
	// after each Delete walks over the leaves already emptied in this
	// transaction, which made a large truncation quadratic.)
	dead, f, err := l.logPrefix(c, cut, countFrom)
	freed += f
	if err != nil {
		return freed, err
	}
	for _, k := range dead {
		if k2, _ := c.Seek(k[:]); k2 == nil || !bytes.Equal(k2, k[:]) {
			continue
		}
		if err := c.Delete(); err != nil {
			return freed, err
		}
		crashpoint.Hit(crashpoint.WALMidTruncate)
	}
	return freed, l.raiseHorizon(tx, cut)
}

// logPrefix lists the log keys with ts <= cut, adding to freed the size of
// those with ts > countFrom.
func (l *Log) logPrefix(c *bolt.Cursor, cut, countFrom uint64) (dead [][8]byte, freed int64, err error) {
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if len(k) != 8 {
			return nil, freed, &CorruptError{Path: l.path, Bucket: "log", Key: bytes.Clone(k), Reason: "log key is not an 8-byte ts"}
		}
		ts := binary.BigEndian.Uint64(k)
		if ts > cut {
			break
		}
		if ts > countFrom {
			freed += int64(len(k) + len(v))
		}
		dead = append(dead, [8]byte(k))
	}
	return dead, freed, nil
}

// retainedTail walks the log backwards from upTo over the records the retention options
// keep, adding to freed those with ts > countFrom, and returns the ts of the newest record to
// delete (0 if none).
func (l *Log) retainedTail(c *bolt.Cursor, upTo, countFrom uint64, keep retention) (freed int64, cut uint64, err error) {
	var k, v []byte
	if upTo == ^uint64(0) {
		k, v = c.Last()
	} else if k, _ = c.Seek(putU64(upTo + 1)); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	var keptN int
	var keptBytes int64
	for ; k != nil; k, v = c.Prev() {
		if len(k) != 8 {
			return freed, 0, &CorruptError{Path: l.path, Bucket: "log", Key: bytes.Clone(k), Reason: "log key is not an 8-byte ts"}
		}
		ts, size := binary.BigEndian.Uint64(k), int64(len(k)+len(v))
		if keptN >= keep.records && keptBytes >= keep.bytes {
			return freed, ts, nil
		}
		keptN++
		keptBytes += size
		if ts > countFrom {
			freed += size
		}
	}
	return freed, 0, nil
}
