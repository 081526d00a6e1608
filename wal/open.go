package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the txkv file format this package writes, stored in meta. Format 2 added
// a CRC-32C to every base value (basefmt.go); Open upgrades a format-1 file in place
// (upgrade.go) and refuses any other version.
const FormatVersion uint64 = 2

// formatNoBaseCRC is the first format, whose base values carry no checksum.
const formatNoBaseCRC uint64 = 1

// Bucket and meta key names.
var (
	bucketLog  = []byte("log")
	bucketBase = []byte("base")
	bucketMeta = []byte("meta")

	metaFormat     = []byte("format")
	metaCheckpoint = []byte("checkpoint")
)

// Open opens or creates the txkv file at path (mode 0600), creating the log, base and meta
// buckets and recording the format version in a new file, whose directory it then fsyncs (a
// file whose directory entry was never synced can vanish in a power loss, data and all). An
// existing file of format 1 is upgraded to the current format before Open returns (see
// upgrade.go). A file that is not a bbolt file, is truncated, lacks the txkv buckets or has an
// unknown format version yields a *CorruptError (errors.Is ErrCorrupt). A file locked by
// another Open fails after Options.OpenTimeout. Open starts the log-writer goroutine; Close
// stops it.
func Open(path string, opts *Options) (*Log, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkNotOpen(path); err != nil {
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
	if err := l.prepare(); err != nil {
		_ = db.Close()
		return nil, err
	}
	l.forget = registerOpen(path)
	go l.run()
	return l, nil
}

// prepare readies an opened file: the page trees (walk.go; bbolt holds the file's lock now,
// so no writer changes them under the walk) — all of them and the freelist against them
// unless the file was closed cleanly —, its layout (created or checked), the format upgrade
// if one is due, and for a new file the fsync of its directory.
func (l *Log) prepare() error {
	if err := checkTrees(l.path, false, string(bucketMeta), string(bucketLog)); err != nil {
		return err
	}
	clean, err := l.markedClean()
	if err != nil {
		return err
	}
	if !clean {
		// No clean Close: walk everything, and check no free page is in use, before the
		// first write transaction allocates from the freelist.
		if err := checkTrees(l.path, true, string(bucketMeta), string(bucketLog), string(bucketBase)); err != nil {
			return err
		}
	}
	st, err := l.initFile()
	if err != nil {
		return err
	}
	if st.upgrade {
		if err := l.upgradeBase(); err != nil {
			return err
		}
	}
	if st.created {
		if err := syncDir(l.dir); err != nil {
			return fmt.Errorf("txkv: open %q: fsync of its directory: %w", l.path, err)
		}
	}
	return nil
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
		return nil, fmt.Errorf("%w: %q is locked by another process (waited %v for bbolt's file lock)",
			ErrInUse, path, o.OpenTimeout)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return nil, &CorruptError{Path: path, Reason: "not a valid bbolt file", Err: err}
	default:
		return nil, openError(path, err)
	}
}

// openError explains why the file could not be opened or created: its directory is missing,
// permission is denied, or another system error (wrapped, so errors.Is sees fs.ErrNotExist,
// fs.ErrPermission and the errno).
func openError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("txkv: open %q: its directory %q does not exist (Open creates the file, not its directories): %w",
			path, filepath.Dir(path), err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("txkv: open %q: permission denied (the file must be readable and writable, its directory writable): %w", path, err)
	}
	return fmt.Errorf("txkv: open %q: %w", path, err)
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
		return openError(path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fmt.Errorf("txkv: open %q: %w (a txkv database is one file: name a file, in this directory or elsewhere)",
			path, &fs.PathError{Op: "open", Path: path, Err: syscall.EISDIR})
	}
	m, pages, err := newestMeta(f, path)
	if err != nil || pages == 0 {
		return err // pages 0: an empty file, which bbolt initializes
	}
	if m.freelist == noFreelist {
		return nil
	}
	if reason := checkFreelist(f, m, pages); reason != "" {
		return &CorruptError{Path: path, Reason: reason}
	}
	return nil
}

// newestMeta reads bbolt's two meta pages and returns the newest valid one (bbolt's choice)
// and the file's length in pages (0 for an empty file), or a *CorruptError when neither is
// valid or the file is shorter than the pages the meta refers to.
func newestMeta(f *os.File, path string) (boltMeta, uint64, error) {
	info, err := f.Stat()
	if err != nil {
		return boltMeta{}, 0, fmt.Errorf("txkv: open %q: %w", path, err)
	}
	size := info.Size()
	if size == 0 {
		return boltMeta{}, 0, nil
	}
	m0, ok0 := readMeta(f, 0)
	pos := int64(4096)
	if ok0 {
		pos = int64(m0.pageSize)
	}
	m1, ok1 := readMeta(f, pos)
	if !ok0 && !ok1 {
		return boltMeta{}, 0, &CorruptError{Path: path, Reason: "no valid bbolt meta page (not a bbolt file)"}
	}
	m := m0
	if !ok0 || (ok1 && m1.txid > m0.txid) {
		m = m1
	}
	pages := uint64(size) / uint64(m.pageSize)
	if m.root >= pages || (m.freelist != noFreelist && m.freelist >= pages) || pages < 2 {
		return boltMeta{}, 0, &CorruptError{Path: path, Reason: fmt.Sprintf(
			"file truncated: %d bytes, but its meta page refers to pages %d and %d of %d bytes",
			size, m.root, m.freelist, m.pageSize)}
	}
	return m, pages, nil
}

// checkFreelist reads the header of the freelist page the meta points to and returns what is
// wrong with it ("" if nothing). bbolt reads the freelist inside its Open and panics on a
// page that is not one — and a panic there cannot be cleaned up: bbolt has mapped the file
// and returns no *DB to unmap it with, and the leaked map keeps the file (and its lock) open,
// so every later Open in the process would time out on the lock. A count beyond the page
// would have bbolt read past its map, or allocate without bound. (A power loss with writeback
// in any order under SyncNone left such files: the meta page reached the disk, the freelist
// page it points to did not.)
func checkFreelist(f io.ReaderAt, m boltMeta, pages uint64) string {
	ids, reason := readFreelist(f, m, pages)
	if reason != "" {
		return reason
	}
	// bbolt hands a free page out for the next write: one far beyond the file makes that
	// write fail (EFBIG) or grow the file without bound, a meta page would be overwritten.
	for _, id := range ids {
		if id < 2 || id >= m.pgid {
			return fmt.Sprintf("freelist page %d lists page %d, outside the %d pages in use", m.freelist, id, m.pgid)
		}
	}
	return ""
}

// readFreelist reads the page ids on the freelist the meta page m points to, checking that
// the page is a freelist page and that they fit it; reason says what is wrong, if anything.
func readFreelist(f io.ReaderAt, m boltMeta, pages uint64) (ids []uint64, reason string) {
	var hdr [boltPageHeader + 8]byte // the header and the first element (the long count)
	off := int64(m.freelist) * int64(m.pageSize)
	if _, err := f.ReadAt(hdr[:], off); err != nil {
		return nil, "freelist page unreadable: " + err.Error()
	}
	ne := binary.NativeEndian
	flags, count, overflow := ne.Uint16(hdr[8:]), uint64(ne.Uint16(hdr[10:])), uint64(ne.Uint32(hdr[12:]))
	if flags != boltFreelistFlag {
		return nil, fmt.Sprintf("page %d, the freelist per the meta page, is not a freelist page (flags %#x)", m.freelist, flags)
	}
	if m.freelist+overflow >= pages {
		return nil, fmt.Sprintf("freelist page %d with %d overflow pages runs past the end of the file", m.freelist, overflow)
	}
	capacity := ((overflow+1)*uint64(m.pageSize) - boltPageHeader) / 8
	first := int64(0)    // the index of the first page id
	if count == 0xFFFF { // the count is in the first element, which takes a slot itself
		count, capacity, first = ne.Uint64(hdr[boltPageHeader:]), capacity-1, 1
	}
	if count > capacity {
		return nil, fmt.Sprintf("freelist page %d claims %d entries, it holds at most %d", m.freelist, count, capacity)
	}
	raw := make([]byte, count*8)
	if _, err := f.ReadAt(raw, off+boltPageHeader+first*8); err != nil {
		return nil, "freelist unreadable: " + err.Error()
	}
	ids = make([]uint64, count)
	for i := range ids {
		ids[i] = ne.Uint64(raw[i*8:])
	}
	return ids, ""
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

	boltFreelistFlag = 0x10
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

// fileState is what initFile found.
type fileState struct {
	created bool // the file was empty: initFile created the layout
	upgrade bool // the base is (partly) in format 1: upgradeBase must run
}

// initFile creates the buckets and format version in a new file, or checks them in an
// existing one, and loads the checkpoint ts, the retained log size and the version bound.
func (l *Log) initFile() (st fileState, err error) {
	var taken bool // the clean mark was there, and is removed by this transaction
	defer guard(l.path, "", &err, nil)
	restore := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(restore)
	err = l.db.Update(func(tx *bolt.Tx) error {
		if isEmpty(tx) {
			st.created = true
			return createLayout(tx)
		}
		var err error
		if st.upgrade, err = l.checkLayout(tx); err != nil {
			return err
		}
		taken, err = takeCleanMark(tx)
		return err
	})
	if err == nil && taken && l.opts.Sync == SyncNone {
		err = l.db.Sync() // the mark's removal must be durable before any unsynced write
	}
	if err != nil {
		var ce *CorruptError
		if errors.As(err, &ce) {
			return st, err
		}
		return st, fmt.Errorf("txkv: open %q: %w", l.path, err)
	}
	return st, l.db.View(func(tx *bolt.Tx) error {
		l.ckptTS.Store(getU64(tx.Bucket(bucketMeta).Get(metaCheckpoint)))
		l.baseBound.Store(versionBound(tx))
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

// checkLayout checks an existing file's buckets and meta, and reports whether its base still
// needs the format-1 upgrade.
func (l *Log) checkLayout(tx *bolt.Tx) (upgrade bool, err error) {
	for _, name := range [][]byte{bucketLog, bucketBase, bucketMeta} {
		if tx.Bucket(name) == nil {
			return false, &CorruptError{Path: l.path, Bucket: string(name),
				Reason: "bucket missing (not a txkv file)"}
		}
	}
	meta := tx.Bucket(bucketMeta)
	f := meta.Get(metaFormat)
	if len(f) != 8 {
		return false, &CorruptError{Path: l.path, Bucket: "meta", Key: metaFormat, Reason: "format version missing"}
	}
	switch v := binary.BigEndian.Uint64(f); v {
	case FormatVersion:
		upgrade = meta.Get(metaUpgrade) != nil // an upgrade that did not finish
	case formatNoBaseCRC:
		upgrade = true
	default:
		return false, &CorruptError{Path: l.path, Bucket: "meta", Key: metaFormat,
			Reason: fmt.Sprintf("format version %d, this build reads %d and %d", v, formatNoBaseCRC, FormatVersion)}
	}
	if c := meta.Get(metaCheckpoint); len(c) != 8 {
		return false, &CorruptError{Path: l.path, Bucket: "meta", Key: metaCheckpoint, Reason: "checkpoint ts malformed"}
	}
	c := tx.Bucket(bucketLog).Cursor()
	if k, _ := c.First(); k != nil && len(k) != 8 {
		return false, &CorruptError{Path: l.path, Bucket: "log", Key: bytes.Clone(k), Reason: "log key is not an 8-byte ts"}
	}
	return upgrade, nil
}

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
