package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv/internal/crashpoint"
)

// Replay chunk bounds: each chunk is read in one short bbolt read transaction and copied out,
// then decoded and handed to fn with no transaction open.
const (
	replayChunkRecords = 4096
	replayChunkBytes   = 4 << 20
)

// Replay calls fn for every log record with ts > CheckpointTS, in ts order, and returns the
// last ts seen (CheckpointTS if none). fn may retain the record and its slices: each chunk
// of records is decoded from a fresh copy. A record whose key, format byte, lengths or CRC do
// not check out yields a *CorruptError naming its ts. An error from fn stops the replay and
// is returned as is.
func (l *Log) Replay(fn func(r *Record) error) (lastTS uint64, err error) {
	lastTS = l.ckptTS.Load()
	for {
		buf, offs, err := l.readChunk(lastTS)
		if err != nil {
			return lastTS, err
		}
		if len(offs) == 0 {
			return lastTS, nil
		}
		slab := make([]Op, 0, len(offs)*2)
		recs := make([]Record, len(offs))
		for i, o := range offs {
			r := &recs[i]
			if err := decodeRecord(buf[o.start:o.end], r, &slab); err != nil {
				return lastTS, l.recordCorrupt(o.ts, err)
			}
			if r.TS != o.ts {
				return lastTS, &CorruptError{Path: l.path, Bucket: "log", TS: o.ts,
					Reason: fmt.Sprintf("record says ts %d", r.TS)}
			}
			if err := fn(r); err != nil {
				return lastTS, err
			}
			crashpoint.Hit(crashpoint.WALMidReplay)
			lastTS = o.ts
		}
	}
}

type chunkOff struct {
	ts         uint64
	start, end int
}

// readChunk copies the raw log records after ts, up to the chunk bounds, out of one read
// transaction.
func (l *Log) readChunk(after uint64) (buf []byte, offs []chunkOff, err error) {
	err = l.view("log", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		var seek [8]byte
		binary.BigEndian.PutUint64(seek[:], after+1)
		if after == ^uint64(0) {
			return nil
		}
		for k, v := c.Seek(seek[:]); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return &CorruptError{Path: l.path, Bucket: "log", Key: append([]byte(nil), k...),
					Reason: "log key is not an 8-byte ts"}
			}
			if err := l.checkElem(tx, "log", k, v); err != nil {
				return err
			}
			if buf == nil {
				buf = make([]byte, 0, min(replayChunkBytes, 64*len(v)+len(v)))
			}
			offs = append(offs, chunkOff{ts: binary.BigEndian.Uint64(k), start: len(buf), end: len(buf) + len(v)})
			buf = append(buf, v...)
			if len(offs) >= replayChunkRecords || len(buf) >= replayChunkBytes {
				break
			}
		}
		return nil
	})
	return buf, offs, err
}

// recordCorrupt names the file and the record's ts in a decode error.
func (l *Log) recordCorrupt(ts uint64, err error) error {
	var ce *CorruptError
	if errors.As(err, &ce) {
		c := *ce
		c.Path, c.Bucket, c.TS = l.path, "log", ts
		return &c
	}
	return &CorruptError{Path: l.path, Bucket: "log", TS: ts, Err: err}
}

// checkElem rejects a key or value longer than the file itself before it is
// copied. bbolt keeps no page checksums: a damaged element header can claim
// gigabytes, and copying that slice would read far past the memory map (or
// exhaust memory) before the record's CRC could object.
func (l *Log) checkElem(tx *bolt.Tx, bucket string, k, v []byte) error {
	if int64(len(k))+int64(len(v)) <= tx.Size() {
		return nil
	}
	ce := &CorruptError{Path: l.path, Bucket: bucket, Key: bytes.Clone(k[:min(len(k), 64)]),
		Reason: "element longer than the file"}
	if bucket == "log" && len(k) == 8 {
		ce.TS = binary.BigEndian.Uint64(k)
	}
	return ce
}
