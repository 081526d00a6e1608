package mvcc

// Co-allocation of small keys and values.
//
// A point read of a key not in any CPU cache costs one memory access per object it touches:
// the index slot, the chain with its key (to compare), the newest version, the value bytes (to
// copy). So a key written once is allocated as one object — chain, key, first version and its
// value — when key and value together fit in 112 bytes: after the index slot, the read costs
// one or two adjacent cache lines. Later versions are allocated with their value, and a chain
// whose first version does not fit is allocated with its key. This also cuts the allocations
// of an install and the objects the garbage collector has to mark.
//
// The inline parts are fields and arrays of one struct, referenced by interior pointers and
// slices; Go's garbage collector keeps the whole struct alive while any of them is live. So a
// first version allocated with its chain (chain.first) lives as long as the chain even after GC
// has unlinked it: at most one version per key, small by construction, and still counted in
// MemBytes until the key leaves the memtable. It must not keep anything else alive: its value
// is inline, and GC clears its next pointer when it unlinks it (trim). Should a second write at
// the same ts replace it (installLocked), its next, which readers may still follow, is left
// as is; being the key's first version it is also its oldest unless an older ts was installed
// after it, so that next is nil in practice.

// newChain returns the chain of a key not in the memtable, holding its first version (at ts,
// w's value or a tombstone), and the chain's private copy of the key (never nil). Neither is
// published yet.
func newChain(ts uint64, w *Write) (*chain, []byte) {
	value := w.Value
	if w.Delete {
		value = nil
	}
	var c *chain
	var v *version
	var buf []byte
	switch n := len(w.Key) + len(value); {
	case n <= 32:
		x := new(chainFirst32)
		c, v, buf = &x.c, &x.v, x.b[:n:n]
	case n <= 48:
		x := new(chainFirst48)
		c, v, buf = &x.c, &x.v, x.b[:n:n]
	case n <= 80:
		x := new(chainFirst80)
		c, v, buf = &x.c, &x.v, x.b[:n:n]
	case n <= 112:
		x := new(chainFirst112)
		c, v, buf = &x.c, &x.v, x.b[:n:n]
	default:
		c, key := newChainKey(w.Key)
		c.head.Store(newVersion(ts, w.Value, w.Delete))
		return c, key
	}
	key, val := buf[:len(w.Key):len(w.Key)], buf[len(w.Key):]
	copy(key, w.Key)
	copy(val, value)
	v.ts, v.tomb = ts, w.Delete
	if !w.Delete {
		v.value = val
	}
	c.key, c.first = immutableString(key), v
	c.head.Store(v)
	return c, key
}

// chainFirstN is a chain, its first version and a buffer for the key followed by the value,
// sized so that the struct fills a Go size class (112, 128, 160 and 192 bytes).
type chainFirst32 struct {
	c chain
	v version
	b [32]byte
}

type chainFirst48 struct {
	c chain
	v version
	b [48]byte
}

type chainFirst80 struct {
	c chain
	v version
	b [80]byte
}

type chainFirst112 struct {
	c chain
	v version
	b [112]byte
}

type chainKey16 struct {
	c chain
	b [16]byte
}

type chainKey40 struct {
	c chain
	b [40]byte
}

type chainKey72 struct {
	c chain
	b [72]byte
}

// newChainKey returns an empty chain and a private copy of key, allocated together when key is
// small. The copy is never nil.
func newChainKey(key []byte) (*chain, []byte) {
	var c *chain
	var buf []byte
	switch n := len(key); {
	case n <= 16:
		x := new(chainKey16)
		c, buf = &x.c, x.b[:n:n]
	case n <= 40:
		x := new(chainKey40)
		c, buf = &x.c, x.b[:n:n]
	case n <= 72:
		x := new(chainKey72)
		c, buf = &x.c, x.b[:n:n]
	default:
		c, buf = new(chain), make([]byte, n)
	}
	copy(buf, key)
	c.key = immutableString(buf)
	return c, buf
}

type versionValue16 struct {
	v version
	b [16]byte
}

type versionValue48 struct {
	v version
	b [48]byte
}

type versionValue112 struct {
	v version
	b [112]byte
}

// newVersion returns a version at ts holding a private copy of value (a tombstone if tomb),
// allocated together with the value when it is small.
func newVersion(ts uint64, value []byte, tomb bool) *version {
	if tomb {
		return &version{ts: ts, tomb: true}
	}
	var v *version
	var buf []byte
	switch n := len(value); {
	case n <= 16:
		x := new(versionValue16)
		v, buf = &x.v, x.b[:n:n]
	case n <= 48:
		x := new(versionValue48)
		v, buf = &x.v, x.b[:n:n]
	case n <= 112:
		x := new(versionValue112)
		v, buf = &x.v, x.b[:n:n]
	default:
		v, buf = new(version), make([]byte, n)
	}
	copy(buf, value)
	v.ts, v.value = ts, buf
	return v
}
