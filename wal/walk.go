package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// The page-tree walk: a check of bbolt's page graph made by reading the file directly, before
// bbolt's cursors walk it.
//
// bbolt trusts its pages. A branch page that points back at itself or at an ancestor — what
// a power loss leaves when a meta page reached the disk and the pages it points to did not,
// so that a page number now holds an older page's content — sends bbolt's cursor down
// forever: it appends to its stack until the process runs out of memory, a fatal error no
// recover catches. So Open walks the trees its own reads will descend (the root bucket, meta
// and the log, which replay reads whole) and Verify walks all of them, each page at most
// once, before any cursor does:
//
//	meta page ──▶ root bucket tree ──▶ leaf elements flagged "bucket" ──▶ bucket roots
//	                                                        log, base, meta trees
//	every page:   number + overflow inside the file; reached once only (no cycle, no
//	              sharing); depth <= maxTreeDepth; a branch or a leaf page
//	branch pages: their elements fit the page; every child walked
//
// Leaves of the log and base are only checked by their header (16 bytes), so the walk reads
// a small part of the file: the branch pages and one header per leaf.

// The clean mark. Walking the base's tree costs a header read per page of the dataset (about
// 20 ms per 100 MB from the page cache, 90 ms from disk), and a tree can only be damaged by a
// power loss under SyncNone or by the disk itself. So Close under SyncAlways, after
// everything else is durable, writes meta "clean" in one more fsynced transaction, and Open
// removes it in its first transaction (under SyncNone followed by an fsync, so that the mark
// cannot outlive the unsynced writes that follow): a file Open finds marked was closed
// cleanly and not written since, and Open walks only the root bucket, meta and the log. Any
// other file — killed, lost power, closed under SyncNone (which never fsyncs, and stays so),
// upgraded from format 1 — has everything walked, and its freelist checked against the trees.
// (Bit rot in a clean file's base is Verify's to find.)
var metaClean = []byte("clean")

// takeCleanMark removes the clean mark inside tx and reports whether it was there.
func takeCleanMark(tx *bolt.Tx) (bool, error) {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(metaClean) == nil {
		return false, nil
	}
	return true, meta.Delete(metaClean)
}

// markClean writes the clean mark, durably, under SyncAlways, unless the log failed (then
// nothing is known about the file) or a read found the file damaged. Close calls it once
// nothing else will write. A read transaction first touches the pages the write will: a write
// transaction that faults on a damaged page cannot be rolled back (bbolt's rollback rereads
// the freelist from the map and faults again, leaving its writer lock held), a read
// transaction can.
func (l *Log) markClean() (err error) {
	if l.opts.Sync != SyncAlways || l.Failed() != nil || l.damaged.Load() {
		return nil
	}
	if err := l.read("meta", func(tx *bolt.Tx) error {
		_ = tx.Bucket(bucketMeta).Get(metaClean)
		return nil
	}); err != nil {
		return nil // damaged: leave the file unmarked, Open will walk it all
	}
	defer guard(l.path, "meta", &err, nil)
	restore := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(restore)
	err = l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(metaClean, []byte{1}) })
	if err != nil {
		return fmt.Errorf("txkv: close %q: marking the file clean: %w", l.path, err)
	}
	return nil
}

// maxTreeDepth bounds a B+tree's depth: with 4 KiB pages and a fan-out of at least 2 (bbolt
// keeps at least two keys per branch) a depth of 64 would mean more pages than any file.
const maxTreeDepth = 64

// bbolt page layout (go.etcd.io/bbolt/internal/common): a 16-byte header — id uint64,
// flags uint16, count uint16, overflow uint32, native byte order — then count 16-byte
// elements. A branch element is pos, ksize uint32 and the child's page id; a leaf element
// is flags, pos, ksize, vsize uint32, its key and value at pos bytes from the element.
const (
	boltBranchFlag  = 0x01
	boltLeafFlag    = 0x02
	boltElemSize    = 16
	boltBucketLeaf  = 0x01 // leaf element flag: the value is a bucket header
	boltBucketHdrSz = 16   // root page id, sequence
)

// treeWalker walks page trees of the file f described by the meta page m.
type treeWalker struct {
	f     io.ReaderAt
	m     boltMeta
	pages uint64 // pages in the file
	seen  map[uint64]bool
}

func newTreeWalker(f io.ReaderAt, m boltMeta, pages uint64) *treeWalker {
	return &treeWalker{f: f, m: m, pages: pages, seen: map[uint64]bool{}}
}

// buckets walks the root bucket's tree and returns the root page of each top-level bucket
// (0 for an inline bucket, which holds no page of its own).
func (w *treeWalker) buckets() (map[string]uint64, error) {
	roots := map[string]uint64{}
	err := w.walk([]uint64{w.m.root}, func(page []byte, count int) error {
		return leafBuckets(page, count, roots)
	})
	return roots, err
}

// walk checks the trees under the pages ids, a level at a time, each level's pages in file
// order (the reads then mostly go forward, which the kernel's readahead serves). It calls
// leaf (if not nil) with each leaf page read in full; without it a leaf's header alone is
// read.
func (w *treeWalker) walk(ids []uint64, leaf func(page []byte, count int) error) error {
	for depth := 0; len(ids) > 0; depth++ {
		if depth > maxTreeDepth {
			return fmt.Errorf("page %d: the tree is deeper than %d levels (a cycle)", ids[0], maxTreeDepth)
		}
		slices.Sort(ids)
		var next []uint64
		for _, id := range ids {
			children, err := w.visit(id, leaf)
			if err != nil {
				return err
			}
			next = append(next, children...)
		}
		ids = next
	}
	return nil
}

// visit checks page id and returns its children (none for a leaf).
func (w *treeWalker) visit(id uint64, leaf func(page []byte, count int) error) ([]uint64, error) {
	switch {
	case id < 2 || id >= w.pages:
		return nil, fmt.Errorf("page %d: not a page of this %d-page file", id, w.pages)
	case w.seen[id]:
		return nil, fmt.Errorf("page %d is reached twice in the page trees (a cycle, or a page in two places)", id)
	}
	w.seen[id] = true
	flags, count, overflow, err := w.header(id)
	if err != nil {
		return nil, err
	}
	if id+overflow >= w.pages {
		return nil, fmt.Errorf("page %d with %d overflow pages runs past the end of the file", id, overflow)
	}
	if flags != boltBranchFlag && flags != boltLeafFlag {
		return nil, fmt.Errorf("page %d in a bucket's tree is neither a branch nor a leaf page (flags %#x)", id, flags)
	}
	if flags == boltLeafFlag && leaf == nil {
		return nil, nil
	}
	page, err := w.read(id, overflow, count)
	if err != nil {
		return nil, err
	}
	if flags == boltLeafFlag {
		return nil, leaf(page, count)
	}
	children := make([]uint64, count)
	for i := range children {
		children[i] = binary.NativeEndian.Uint64(page[boltPageHeader+i*boltElemSize+8:])
	}
	return children, nil
}

// header reads page id's flags, element count and overflow.
func (w *treeWalker) header(id uint64) (flags uint16, count int, overflow uint64, err error) {
	var h [boltPageHeader]byte
	if _, err := w.f.ReadAt(h[:], int64(id)*int64(w.m.pageSize)); err != nil {
		return 0, 0, 0, fmt.Errorf("page %d unreadable: %w", id, err)
	}
	ne := binary.NativeEndian
	return ne.Uint16(h[8:]), int(ne.Uint16(h[10:])), uint64(ne.Uint32(h[12:])), nil
}

// read reads page id and its overflow pages, checking that count elements fit.
func (w *treeWalker) read(id, overflow uint64, count int) ([]byte, error) {
	page := make([]byte, (overflow+1)*uint64(w.m.pageSize))
	if _, err := w.f.ReadAt(page, int64(id)*int64(w.m.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d unreadable: %w", id, err)
	}
	if boltPageHeader+count*boltElemSize > len(page) {
		return nil, fmt.Errorf("page %d: %d elements do not fit its %d bytes", id, count, len(page))
	}
	return page, nil
}

// leafBuckets records the bucket headers among a leaf page's elements.
func leafBuckets(page []byte, count int, roots map[string]uint64) error {
	ne := binary.NativeEndian
	for i := range count {
		e := boltPageHeader + i*boltElemSize
		flags, pos := ne.Uint32(page[e:]), uint64(ne.Uint32(page[e+4:]))
		ksize, vsize := uint64(ne.Uint32(page[e+8:])), uint64(ne.Uint32(page[e+12:]))
		if flags&boltBucketLeaf == 0 {
			continue
		}
		k := uint64(e) + pos
		if vsize < boltBucketHdrSz || k+ksize+vsize > uint64(len(page)) {
			return fmt.Errorf("root bucket: element %d does not fit its page", i)
		}
		roots[string(page[k:k+ksize])] = ne.Uint64(page[k+ksize:])
	}
	return nil
}

// checkTrees walks, in the file at path, the root bucket's tree and the trees of the named
// buckets, and with free also checks that no page on the freelist is in them (a page both
// free and in use is overwritten by the next write). A missing bucket is left to
// checkLayout. Damage is a *CorruptError.
func checkTrees(path string, free bool, names ...string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("txkv: open %q: %w", path, err)
	}
	defer f.Close()
	m, pages, err := newestMeta(f, path)
	if err != nil || pages == 0 {
		return err
	}
	w := newTreeWalker(f, m, pages)
	err = walkBuckets(w, names...)
	if err == nil && free {
		err = w.freeInUse()
	}
	if err != nil {
		return &CorruptError{Path: path, Reason: "page tree: " + err.Error()}
	}
	return nil
}

// freeInUse reports a page the freelist lists that the walk found in a tree.
func (w *treeWalker) freeInUse() error {
	if w.m.freelist == noFreelist {
		return nil
	}
	ids, reason := readFreelist(w.f, w.m, w.pages)
	if reason != "" {
		return errors.New(reason)
	}
	for _, id := range ids {
		if w.seen[id] {
			return fmt.Errorf("page %d is on the freelist and in use", id)
		}
	}
	return nil
}

// markedClean reports whether the file carries the clean mark, reading it through bbolt:
// the meta bucket's tree has been walked.
func (l *Log) markedClean() (clean bool, err error) {
	err = l.read("meta", func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			clean = meta.Get(metaClean) != nil
		}
		return nil
	})
	return clean, err
}

// walkBuckets walks the root bucket's tree and then the named buckets' trees, together.
func walkBuckets(w *treeWalker, names ...string) error {
	roots, err := w.buckets()
	if err != nil {
		return err
	}
	var ids []uint64
	for _, name := range names {
		if root := roots[name]; root != 0 {
			ids = append(ids, root)
		}
	}
	return w.walk(ids, nil)
}
