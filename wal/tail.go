package wal

// The log tail: reading committed records back, in ts order, for change streams (txkv's
// Watch), and keeping enough of them around to make that useful.
//
// # What the log holds
//
// Recovery needs only the records after the checkpoint; a change-stream reader that fell
// behind, or resumes after a restart, needs older ones. So a checkpoint no longer deletes
// every record with ts <= its ts: it keeps the newest of them (Options.RetainRecords,
// RetainBytes) and deletes only the prefix before them, always a prefix, so the log is a
// contiguous suffix of the commit history:
//
//	ts:   1 ........ 40 | 41 ........ 90 | 91 ............ 130
//	      deleted       | retained tail  | after the checkpoint (ts 90)
//	                    ^                                     ^
//	       horizon = 40 (meta "horizon")          replayed at Open
//
// The horizon is the highest ts ever deleted from the log. Every commit with a ts above it
// is still in the log, so a reader may start at any from > horizon and miss nothing; a
// reader asking for from <= horizon gets ErrCompacted. The horizon is not "the oldest
// record's ts minus one": timestamps of aborted transactions never reach the log, so the
// oldest record may be well above the horizon, and a reader resuming just after its last
// record must not be refused for the aborted timestamps in between.
//
// The horizon is written by the checkpoint's own bbolt transaction, together with the
// deletion, and ReadTail reads it in the same read transaction as the records, so a reader
// never sees records deleted without the horizon having moved, or the reverse. A file
// written before the horizon existed has no "horizon" key; its checkpoints deleted
// everything up to the checkpoint ts, which is therefore its horizon.
//
// # Reading
//
// ReadTail copies the raw records of one bounded chunk out of one short read transaction
// and decodes them with no transaction open (as Replay does): a slow reader never holds a
// bbolt read transaction, which would stall the writer's remap and so group commit.
//
// References: PostgreSQL's wal_keep_size and replication slots (WAL kept behind the
// checkpoint for consumers); MongoDB change streams' resume tokens and the oplog window
// (ChangeStreamHistoryLost); etcd's compacted revision (ErrCompacted).

import (
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// metaHorizon is the meta key of the tail horizon: the highest ts deleted from the log.
var metaHorizon = []byte("horizon")

// Tail read bounds: one chunk is read in one read transaction.
const (
	tailChunkBytes = 4 << 20
	tailMaxRecords = 4096
)

// horizonIn returns the tail horizon as of tx.
func horizonIn(tx *bolt.Tx) uint64 {
	meta := tx.Bucket(bucketMeta)
	if h := meta.Get(metaHorizon); len(h) == 8 {
		return binary.BigEndian.Uint64(h)
	}
	// Written before the horizon was recorded: checkpoints deleted all they covered.
	return getU64(meta.Get(metaCheckpoint))
}

// raiseHorizon records, inside a checkpoint's transaction, that the records up to cut (0:
// none) have been deleted. It always writes the key: a file without one reads its checkpoint
// ts as the horizon, which this checkpoint is about to make wrong if it retains records. The
// checkpoint has already put its new ts in meta, so the previous one comes from l.ckptTS.
func (l *Log) raiseHorizon(tx *bolt.Tx, cut uint64) error {
	meta := tx.Bucket(bucketMeta)
	h := l.ckptTS.Load()
	if old := meta.Get(metaHorizon); len(old) == 8 {
		h = binary.BigEndian.Uint64(old)
	}
	return meta.Put(metaHorizon, putU64(max(h, cut)))
}

// TailHorizon returns the highest ts deleted from the log: ReadTail serves every from above
// it.
func (l *Log) TailHorizon() (uint64, error) {
	var h uint64
	err := l.view("meta", func(tx *bolt.Tx) error {
		h = horizonIn(tx)
		return nil
	})
	return h, err
}

// ReadTail returns, in ts order, the first committed records with from <= ts <= to: at most
// maxRecords of them (maxRecords <= 0: a chunk of 4096) and about 4 MiB. Callers continue
// from the last ts + 1; an empty result means no record remains in [from, to]. The records
// and their slices are the caller's.
//
// If the log no longer holds every record with ts >= from — a checkpoint deleted some
// (from <= TailHorizon) — it returns an error wrapping ErrCompacted and no records. A record
// that fails its checks yields a *CorruptError naming its ts.
func (l *Log) ReadTail(from, to uint64, maxRecords int) ([]Record, error) {
	if maxRecords <= 0 || maxRecords > tailMaxRecords {
		maxRecords = tailMaxRecords
	}
	if from == 0 {
		from = 1 // ts 0 is never a commit
	}
	var (
		buf     []byte
		offs    []chunkOff
		horizon uint64
	)
	err := l.view("log", func(tx *bolt.Tx) error {
		horizon = horizonIn(tx)
		if from <= horizon || from > to {
			return nil
		}
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(putU64(from)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return &CorruptError{Path: l.path, Bucket: "log", Key: append([]byte(nil), k...),
					Reason: "log key is not an 8-byte ts"}
			}
			ts := binary.BigEndian.Uint64(k)
			if ts > to {
				return nil
			}
			if err := l.checkElem(tx, "log", k, v); err != nil {
				return err
			}
			offs = append(offs, chunkOff{ts: ts, start: len(buf), end: len(buf) + len(v)})
			buf = append(buf, v...)
			if len(offs) >= maxRecords || len(buf) >= tailChunkBytes {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if from <= horizon {
		return nil, fmt.Errorf("%w: version %d requested, the log holds versions above %d", ErrCompacted, from, horizon)
	}
	return l.decodeChunk(buf, offs)
}

// decodeChunk decodes the records readTail copied out, checking each against its key.
func (l *Log) decodeChunk(buf []byte, offs []chunkOff) ([]Record, error) {
	if len(offs) == 0 {
		return nil, nil
	}
	recs := make([]Record, len(offs))
	slab := make([]Op, 0, 2*len(offs))
	for i, o := range offs {
		r := &recs[i]
		if err := decodeRecord(buf[o.start:o.end], r, &slab); err != nil {
			return nil, l.recordCorrupt(o.ts, err)
		}
		if r.TS != o.ts {
			return nil, &CorruptError{Path: l.path, Bucket: "log", TS: o.ts,
				Reason: fmt.Sprintf("record says ts %d", r.TS)}
		}
	}
	return recs, nil
}
