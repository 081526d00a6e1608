package mvcc

import (
	"bytes"

	"github.com/google/btree"
)

// WriteSet is a transaction's ordered write buffer (the overlay of its reads and scans). Keys
// and values are copied in. The zero value is ready to use. It is not safe for concurrent use:
// it belongs to one transaction.
type WriteSet struct {
	tree  *btree.BTreeG[wsEntry]
	bytes int
}

type wsEntry struct {
	key, value []byte
	del        bool
}

func lessWS(a, b wsEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// NewWriteSet returns an empty write set.
func NewWriteSet() *WriteSet { return &WriteSet{} }

func (w *WriteSet) init() {
	if w.tree == nil {
		w.tree = btree.NewG(16, lessWS)
	}
}

// Put buffers key = value, replacing any earlier write of key.
func (w *WriteSet) Put(key, value []byte) {
	v := make([]byte, len(value))
	copy(v, value)
	w.set(wsEntry{key: key, value: v})
}

// Delete buffers a deletion of key, replacing any earlier write of key.
func (w *WriteSet) Delete(key []byte) { w.set(wsEntry{key: key, del: true}) }

func (w *WriteSet) set(e wsEntry) {
	w.init()
	if old, ok := w.tree.Get(e); ok {
		e.key = old.key // already owned
		w.bytes -= len(old.key) + len(old.value)
	} else {
		e.key = bytes.Clone(e.key)
		if e.key == nil {
			e.key = []byte{}
		}
	}
	w.tree.ReplaceOrInsert(e)
	w.bytes += len(e.key) + len(e.value)
}

// Get returns the buffered write of key: ok=false if none, deleted=true for a buffered delete.
func (w *WriteSet) Get(key []byte) (value []byte, deleted, ok bool) {
	if w == nil || w.tree == nil {
		return nil, false, false
	}
	e, ok := w.tree.Get(wsEntry{key: key})
	if !ok {
		return nil, false, false
	}
	return e.value, e.del, true
}

// Len returns the number of buffered keys.
func (w *WriteSet) Len() int {
	if w == nil || w.tree == nil {
		return 0
	}
	return w.tree.Len()
}

// Bytes returns the total size of the buffered keys and values.
func (w *WriteSet) Bytes() int {
	if w == nil {
		return 0
	}
	return w.bytes
}

// Writes returns the buffered writes sorted by key (the order in which the commit protocol
// locks them). The slices are the write set's own; do not modify them.
func (w *WriteSet) Writes() []Write {
	if w.Len() == 0 {
		return nil
	}
	out := make([]Write, 0, w.tree.Len())
	w.tree.Ascend(func(e wsEntry) bool {
		out = append(out, Write{Key: e.key, Value: e.value, Delete: e.del})
		return true
	})
	return out
}

// Range calls fn for the buffered writes in [start, end) (nil = open) in key order until fn
// returns false.
func (w *WriteSet) Range(start, end []byte, fn func(key, value []byte, deleted bool) bool) {
	if w.Len() == 0 {
		return
	}
	visit := func(e wsEntry) bool {
		if end != nil && bytes.Compare(e.key, end) >= 0 {
			return false
		}
		return fn(e.key, e.value, e.del)
	}
	if start == nil {
		w.tree.Ascend(visit)
		return
	}
	w.tree.AscendGreaterOrEqual(wsEntry{key: start}, visit)
}

// Reset empties the write set, keeping its memory for reuse.
func (w *WriteSet) Reset() {
	if w.tree != nil {
		w.tree.Clear(true)
	}
	w.bytes = 0
}
