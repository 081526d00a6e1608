package mvcc

import (
	"bytes"
	"slices"

	"github.com/google/btree"
)

// WriteSet is a transaction's ordered write buffer (the overlay of its reads and scans). Keys
// and values are copied in. The zero value is ready to use. It is not safe for concurrent use:
// it belongs to one transaction.
//
// Most transactions write a handful of keys, so the set starts as a sorted slice (binary
// search, no allocation beyond the slice) and moves to a btree past smallWrites keys, where
// inserting into a slice would start to cost more than the tree's allocations.
//
// The struct is one pointer, allocated at the first write, so that a read-only transaction
// that embeds a WriteSet pays 8 bytes for it.
type WriteSet struct{ d *wsData }

type wsData struct {
	small []wsEntry              // sorted by key; used while tree is nil
	tree  *btree.BTreeG[wsEntry] // non-nil once the set outgrew small
	bytes int
}

// smallWrites is the largest number of keys kept in the sorted slice.
const smallWrites = 16

type wsEntry struct {
	key, value []byte
	del        bool
}

func lessWS(a, b wsEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

func cmpWSKey(e wsEntry, key []byte) int { return bytes.Compare(e.key, key) }

// NewWriteSet returns an empty write set.
func NewWriteSet() *WriteSet { return &WriteSet{} }

// Put buffers key = value, replacing any earlier write of key. Both are
// copied; a new key and its value share one allocation.
func (w *WriteSet) Put(key, value []byte) { w.set(wsEntry{key: key, value: value}) }

// Delete buffers a deletion of key, replacing any earlier write of key.
func (w *WriteSet) Delete(key []byte) { w.set(wsEntry{key: key, del: true}) }

func (w *WriteSet) set(e wsEntry) {
	if w.d == nil {
		w.d = new(wsData)
	}
	w.d.set(e)
}

func (w *wsData) set(e wsEntry) {
	if w.tree != nil {
		w.setTree(e)
		return
	}
	i, found := slices.BinarySearchFunc(w.small, e.key, cmpWSKey)
	if found {
		old := w.small[i]
		e = ownValue(e, old.key)
		w.bytes += len(e.value) - len(old.value)
		w.small[i] = e
		return
	}
	e = ownEntry(e)
	w.bytes += len(e.key) + len(e.value)
	if len(w.small) < smallWrites {
		if w.small == nil {
			w.small = make([]wsEntry, 0, 2) // a transfer's two keys: one allocation, not two
		}
		w.small = slices.Insert(w.small, i, e)
		return
	}
	w.tree = btree.NewG(16, lessWS)
	for _, x := range w.small {
		w.tree.ReplaceOrInsert(x)
	}
	w.small = nil
	w.tree.ReplaceOrInsert(e)
}

func (w *wsData) setTree(e wsEntry) {
	if old, ok := w.tree.Get(e); ok {
		e = ownValue(e, old.key)
		w.bytes -= len(old.key) + len(old.value)
	} else {
		e = ownEntry(e)
	}
	w.tree.ReplaceOrInsert(e)
	w.bytes += len(e.key) + len(e.value)
}

// ownEntry copies a new entry's key and, for a put, its value into the
// write set, in one allocation. An empty key or put value stays non-nil, as
// it always was here: a put of "" is a value, not an absence.
func ownEntry(e wsEntry) wsEntry {
	buf := make([]byte, len(e.key)+len(e.value))
	n := copy(buf, e.key)
	e.key = buf[:n:n]
	if !e.del {
		copy(buf[n:], e.value)
		e.value = buf[n:]
	}
	return e
}

// ownValue copies a rewritten entry's value (its key is the owned one of
// the write it replaces).
func ownValue(e wsEntry, ownedKey []byte) wsEntry {
	e.key = ownedKey
	if !e.del {
		e.value = append(make([]byte, 0, len(e.value)), e.value...)
	}
	return e
}

// Get returns the buffered write of key: ok=false if none, deleted=true for a buffered delete.
func (ws *WriteSet) Get(key []byte) (value []byte, deleted, ok bool) {
	if ws == nil || ws.d == nil {
		return nil, false, false
	}
	w := ws.d
	var e wsEntry
	if w.tree != nil {
		e, ok = w.tree.Get(wsEntry{key: key})
	} else {
		var i int
		if i, ok = slices.BinarySearchFunc(w.small, key, cmpWSKey); ok {
			e = w.small[i]
		}
	}
	if !ok {
		return nil, false, false
	}
	return e.value, e.del, true
}

// Len returns the number of buffered keys.
func (w *WriteSet) Len() int {
	switch {
	case w == nil || w.d == nil:
		return 0
	case w.d.tree != nil:
		return w.d.tree.Len()
	}
	return len(w.d.small)
}

// Bytes returns the total size of the buffered keys and values.
func (w *WriteSet) Bytes() int {
	if w == nil || w.d == nil {
		return 0
	}
	return w.d.bytes
}

// Writes returns the buffered writes sorted by key (the order in which the commit protocol
// locks them). The slices are the write set's own; do not modify them.
func (w *WriteSet) Writes() []Write {
	if w.Len() == 0 {
		return nil
	}
	out := make([]Write, 0, w.Len())
	w.Range(nil, nil, func(key, value []byte, deleted bool) bool {
		out = append(out, Write{Key: key, Value: value, Delete: deleted})
		return true
	})
	return out
}

// Range calls fn for the buffered writes in [start, end) (nil = open) in key order until fn
// returns false.
func (ws *WriteSet) Range(start, end []byte, fn func(key, value []byte, deleted bool) bool) {
	if ws.Len() == 0 {
		return
	}
	w := ws.d
	visit := func(e wsEntry) bool {
		if end != nil && bytes.Compare(e.key, end) >= 0 {
			return false
		}
		return fn(e.key, e.value, e.del)
	}
	switch {
	case w.tree == nil:
		i := 0
		if start != nil {
			i, _ = slices.BinarySearchFunc(w.small, start, cmpWSKey)
		}
		for _, e := range w.small[i:] {
			if !visit(e) {
				return
			}
		}
	case start == nil:
		w.tree.Ascend(visit)
	default:
		w.tree.AscendGreaterOrEqual(wsEntry{key: start}, visit)
	}
}

// Reset empties the write set, keeping its memory for reuse.
func (ws *WriteSet) Reset() {
	w := ws.d
	if w == nil {
		return
	}
	clear(w.small)
	w.small = w.small[:0]
	if w.tree != nil {
		w.tree.Clear(true)
	}
	w.bytes = 0
}
