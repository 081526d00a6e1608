package mvcc

// Co-allocation of small keys and values.
//
// A point read of a key not in any CPU cache costs one memory access per object it touches:
// the index slot, the key bytes (to compare), the chain, the newest version, the value bytes
// (to copy). Allocating a chain together with its key, and a version together with its value,
// halves the objects: the key comparison brings the chain's head into cache, and the version
// brings its value. It also halves the allocations of an install and the objects the garbage
// collector has to mark. Larger keys and values are allocated separately, as before.
//
// The inline buffers are arrays in the same struct, referenced by an interior slice; Go's
// garbage collector keeps the whole struct alive for as long as either pointer is live.

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

// newChain returns an empty chain and a private copy of key, allocated together when key is
// small. The copy is never nil.
func newChain(key []byte) (*chain, []byte) {
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
