package wal

import (
	"errors"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"
)

// maxVerifyErrors bounds what Verify reports: a badly damaged file could otherwise yield an
// error per entry.
const maxVerifyErrors = 100

// Verify reads the whole file and reports what is damaged: the page trees of every bucket
// (walk.go: a cycle or a page out of place ends the check there), the meta values (format,
// checkpoint ts), every base entry (its CRC-32C, its version against the newest commit the
// file holds), every log record, retained tail included (its key, format byte, lengths and
// CRC, and the ts it names), and then bbolt's own structural check (every page reachable
// exactly once or free, keys in order). It returns nil, or an error wrapping ErrCorrupt that
// joins up to 100 *CorruptErrors, each naming the bucket and the key or record. It reads in
// short read transactions, like Scan and Replay, except for bbolt's check, which holds one
// for its whole walk: a commit that must grow the memory map meanwhile waits for it.
func (l *Log) Verify() error {
	v := verifier{l: l}
	if err := v.trees(); err != nil || len(v.errs) > 0 {
		return errors.Join(append(v.errs, err)...) // damaged trees: a cursor could loop on them
	}
	steps := []func() error{v.meta, v.base, v.log, v.structure}
	for _, step := range steps {
		if err := step(); err != nil {
			return err // ErrClosed, or a read failure that is not damage
		}
		if v.full() {
			break
		}
	}
	return errors.Join(v.errs...)
}

// trees walks every bucket's page tree (walk.go) as of one read transaction — bbolt reuses
// no page a reader can reach, so the pages read through a file descriptor stay those of that
// transaction — before any cursor walks them: on a tree with a cycle a cursor would never
// stop.
func (v *verifier) trees() error {
	err := v.l.view("", func(tx *bolt.Tx) error {
		f, err := os.Open(v.l.path)
		if err != nil {
			return err
		}
		defer f.Close()
		page := uint32(v.l.db.Info().PageSize)
		m := boltMeta{pageSize: page, root: uint64(tx.Cursor().Bucket().Root())}
		w := newTreeWalker(f, m, uint64(tx.Size())/uint64(page))
		if err := walkBuckets(w, string(bucketMeta), string(bucketLog), string(bucketBase)); err != nil {
			v.errs = append(v.errs, &CorruptError{Path: v.l.path, Reason: "page tree: " + err.Error()})
		}
		return nil
	})
	return err
}

// verifier collects the damage Verify finds.
type verifier struct {
	l    *Log
	errs []error
}

func (v *verifier) full() bool { return len(v.errs) >= maxVerifyErrors }

// note records err if it is damage and reports whether the walk must stop: the report is
// full, or err is not damage (the database closed), which it returns.
func (v *verifier) note(err error) (stop bool, other error) {
	if err == nil {
		return false, nil
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return true, err
	}
	v.errs = append(v.errs, err)
	return v.full(), nil
}

// meta checks the meta values Open relies on.
func (v *verifier) meta() error {
	err := v.l.view("meta", func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{metaFormat, metaCheckpoint} {
			if len(meta.Get(k)) != 8 {
				v.errs = append(v.errs, &CorruptError{Path: v.l.path, Bucket: "meta", Key: k, Reason: "not an 8-byte value"})
			}
		}
		if h := meta.Get(metaHorizon); h != nil && len(h) != 8 {
			v.errs = append(v.errs, &CorruptError{Path: v.l.path, Bucket: "meta", Key: metaHorizon, Reason: "not an 8-byte value"})
		}
		return nil
	})
	_, other := v.note(err)
	return other
}

// base checks every base entry.
func (v *verifier) base() error {
	return v.walk("base", bucketBase, func(tx *bolt.Tx, k, val []byte) error {
		if err := v.l.checkElem(tx, "base", k, val); err != nil {
			return err
		}
		_, _, err := v.l.decodeBase(tx, k, val)
		return err
	})
}

// log checks every record in the log bucket, the retained tail included.
func (v *verifier) log() error {
	return v.walk("log", bucketLog, func(tx *bolt.Tx, k, val []byte) error {
		ts, err := v.l.logKey(tx, k, val)
		if err != nil {
			return err
		}
		return v.l.checkRecord(ts, val)
	})
}

// walk calls check for every element of bucket, scanChunk elements per read transaction (so
// the writer is never held up for long), recording damage and going on past it.
func (v *verifier) walk(name string, bucket []byte, check func(tx *bolt.Tx, k, val []byte) error) error {
	var after []byte
	for {
		var n int
		stopped := false
		err := v.l.view(name, func(tx *bolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			k, val := c.First()
			if after != nil {
				k, val = seekFrom(c, nil, after)
			}
			for ; k != nil && n < scanChunk; k, val = c.Next() {
				after = append(after[:0], k...)
				n++
				if stopped, _ = v.note(check(tx, k, val)); stopped {
					return nil
				}
			}
			return nil
		})
		if stop, other := v.note(err); stop || other != nil || stopped {
			return other
		}
		if n < scanChunk {
			return nil
		}
	}
}

// checkRecord decodes a log record and checks it names the ts of its key.
func (l *Log) checkRecord(ts uint64, val []byte) error {
	var r Record
	var slab []Op
	if err := decodeRecord(val, &r, &slab); err != nil {
		return l.recordCorrupt(ts, err)
	}
	if r.TS != ts {
		return &CorruptError{Path: l.path, Bucket: "log", TS: ts, Reason: fmt.Sprintf("record says ts %d", r.TS)}
	}
	return nil
}

// structure runs bbolt's consistency check. It visits the pages the base and log walks have
// read already (a page beyond the file was reported by them, in this goroutine, where the
// fault becomes an error; bbolt's check runs in a goroutine of its own), plus the freelist,
// which Open read.
func (v *verifier) structure() error {
	err := v.l.view("", func(tx *bolt.Tx) error {
		for err := range tx.Check() { // read to the end: the check's goroutine sends until done
			if !v.full() {
				v.errs = append(v.errs, &CorruptError{Path: v.l.path, Reason: "bbolt consistency check", Err: err})
			}
		}
		return nil
	})
	_, other := v.note(err)
	return other
}
