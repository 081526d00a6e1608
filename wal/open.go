package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the txkv file format this package reads and writes, stored in meta.
const FormatVersion uint64 = 1

// Bucket and meta key names.
var (
	bucketLog  = []byte("log")
	bucketBase = []byte("base")
	bucketMeta = []byte("meta")

	metaFormat     = []byte("format")
	metaCheckpoint = []byte("checkpoint")
)

// Open opens or creates the txkv file at path (mode 0600), creating the log, base and meta
// buckets and recording the format version in a new file. An existing file that is not a
// bbolt file, is truncated, lacks the txkv buckets or has another format version yields a
// *CorruptError (errors.Is ErrCorrupt). A file locked by another Open fails after
// Options.OpenTimeout. Open starts the log-writer goroutine; Close stops it.
func Open(path string, opts *Options) (*Log, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := precheckFile(path); err != nil {
		return nil, err
	}
	db, err := openBolt(path, &o)
	if err != nil {
		return nil, err
	}
	l := newLog(path, db, o)
	if err := l.initFile(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go l.run()
	return l, nil
}

// openBolt opens the bbolt file, turning bbolt's panics and memory faults on a damaged file
// into a *CorruptError. If bbolt panics half way through its Open there is no *bolt.DB to
// close, so the file descriptor (and with it the file lock) is closed here through the
// OpenFile hook; the memory map of that aborted open is leaked.
func openBolt(path string, o *Options) (db *bolt.DB, err error) {
	var file *os.File
	bo := &bolt.Options{
		Timeout:         o.OpenTimeout,
		NoSync:          o.Sync == SyncNone,
		NoGrowSync:      o.Sync == SyncNone,
		NoFreelistSync:  o.NoFreelistSync,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: o.InitialMmapSize,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	}
	defer guard(path, "", &err, func() {
		if file != nil {
			_ = file.Close()
		}
	})
	restore := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(restore)
	db, err = bolt.Open(path, 0o600, bo)
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("txkv: open %q: file is locked by another open database (waited %v): %w",
			path, o.OpenTimeout, err)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return nil, &CorruptError{Path: path, Reason: "not a valid bbolt file", Err: err}
	default:
		return nil, fmt.Errorf("txkv: open %q: %w", path, err)
	}
}

// guard recovers a panic (including a memory fault, which it turns into a panic for the
// current goroutine) raised by bbolt while reading a damaged file and stores it in *errp as a
// *CorruptError. It must be deferred directly. cleanup, if non-nil, runs after a panic.
func guard(path, bucket string, errp *error, cleanup func()) {
	if r := recover(); r != nil {
		if cleanup != nil {
			cleanup()
		}
		*errp = &CorruptError{Path: path, Bucket: bucket, Reason: "bbolt failed reading the file",
			Err: fmt.Errorf("panic: %v", r)}
	}
}

// precheckFile reads bbolt's two meta pages itself, so that a file that is not a bbolt file,
// or whose root or freelist page lies beyond its end (truncation), gets a clear error before
// bbolt maps it. (The high-water page id is no test: bbolt under NoGrowSync may legitimately
// leave never-written free pages past the end of the file.) Deeper damage is left to guard.
func precheckFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("txkv: open %q: %w", path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("txkv: open %q: %w", path, err)
	}
	size := info.Size()
	if size == 0 {
		return nil // bbolt initializes an empty file
	}
	m0, ok0 := readMeta(f, 0)
	pos := int64(4096)
	if ok0 {
		pos = int64(m0.pageSize)
	}
	m1, ok1 := readMeta(f, pos)
	if !ok0 && !ok1 {
		return &CorruptError{Path: path, Reason: "no valid bbolt meta page (not a bbolt file)"}
	}
	m := m0
	if !ok0 || (ok1 && m1.txid > m0.txid) {
		m = m1
	}
	pages := uint64(size) / uint64(m.pageSize)
	if m.root >= pages || (m.freelist != noFreelist && m.freelist >= pages) || pages < 2 {
		return &CorruptError{Path: path, Reason: fmt.Sprintf(
			"file truncated: %d bytes, but its meta page refers to pages %d and %d of %d bytes",
			size, m.root, m.freelist, m.pageSize)}
	}
	return nil
}

// boltMeta is the part of bbolt's meta page precheckFile needs. The layout (native byte
// order, after a 16-byte page header) is: magic, version, pageSize, flags uint32; root pgid,
// sequence, freelist pgid, high-water pgid, txid, checksum uint64; the checksum is FNV-64a of
// the 56 bytes before it.
type boltMeta struct {
	pageSize       uint32
	root, freelist uint64
	pgid, txid     uint64
}

const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltPageHeader = 16
	boltMetaSum    = 56
	noFreelist     = ^uint64(0)
)

func readMeta(f io.ReaderAt, off int64) (boltMeta, bool) {
	var buf [boltPageHeader + boltMetaSum + 8]byte
	if _, err := f.ReadAt(buf[:], off); err != nil {
		return boltMeta{}, false
	}
	b := buf[boltPageHeader:]
	ne := binary.NativeEndian
	h := fnv.New64a()
	_, _ = h.Write(b[:boltMetaSum])
	if ne.Uint32(b[0:]) != boltMagic || ne.Uint32(b[4:]) != boltVersion ||
		ne.Uint64(b[boltMetaSum:]) != h.Sum64() {
		return boltMeta{}, false
	}
	m := boltMeta{pageSize: ne.Uint32(b[8:]), root: ne.Uint64(b[16:]), freelist: ne.Uint64(b[32:]),
		pgid: ne.Uint64(b[40:]), txid: ne.Uint64(b[48:])}
	if m.pageSize < 512 || m.pageSize > 1<<24 {
		return boltMeta{}, false
	}
	return m, true
}

// initFile creates the buckets and format version in a new file, or checks them in an
// existing one, and loads the checkpoint ts and the retained log size.
func (l *Log) initFile() (err error) {
	defer guard(l.path, "", &err, nil)
	restore := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(restore)
	err = l.db.Update(func(tx *bolt.Tx) error {
		if isEmpty(tx) {
			return createLayout(tx)
		}
		return l.checkLayout(tx)
	})
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("txkv: open %q: %w", l.path, err)
	}
	return l.db.View(func(tx *bolt.Tx) error {
		l.ckptTS.Store(getU64(tx.Bucket(bucketMeta).Get(metaCheckpoint)))
		var n int64
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			n += int64(len(k) + len(v))
		}
		l.logBytes.Store(n)
		return nil
	})
}

func isEmpty(tx *bolt.Tx) bool {
	k, _ := tx.Cursor().First()
	return k == nil
}

func createLayout(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLog, bucketBase, bucketMeta} {
		if _, err := tx.CreateBucket(name); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(metaFormat, putU64(FormatVersion)); err != nil {
		return err
	}
	return meta.Put(metaCheckpoint, putU64(0))
}

func (l *Log) checkLayout(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketLog, bucketBase, bucketMeta} {
		if tx.Bucket(name) == nil {
			return &CorruptError{Path: l.path, Bucket: string(name),
				Reason: "bucket missing (not a txkv file)"}
		}
	}
	meta := tx.Bucket(bucketMeta)
	f := meta.Get(metaFormat)
	if len(f) != 8 {
		return &CorruptError{Path: l.path, Bucket: "meta", Key: metaFormat, Reason: "format version missing"}
	}
	if v := binary.BigEndian.Uint64(f); v != FormatVersion {
		return &CorruptError{Path: l.path, Bucket: "meta", Key: metaFormat,
			Reason: fmt.Sprintf("format version %d, this build reads %d", v, FormatVersion)}
	}
	if c := meta.Get(metaCheckpoint); len(c) != 8 {
		return &CorruptError{Path: l.path, Bucket: "meta", Key: metaCheckpoint, Reason: "checkpoint ts malformed"}
	}
	c := tx.Bucket(bucketLog).Cursor()
	if k, _ := c.First(); k != nil && len(k) != 8 {
		return &CorruptError{Path: l.path, Bucket: "log", Key: bytes.Clone(k), Reason: "log key is not an 8-byte ts"}
	}
	return nil
}

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
