package mvcc

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"
)

// The inline types fill Go size classes exactly: a byte more would be wasted rounding.
func TestChainFirstSizes(t *testing.T) {
	eq(t, uintptr(112), unsafe.Sizeof(chainFirst32{}))
	eq(t, uintptr(128), unsafe.Sizeof(chainFirst48{}))
	eq(t, uintptr(160), unsafe.Sizeof(chainFirst80{}))
	eq(t, uintptr(192), unsafe.Sizeof(chainFirst112{}))
}

// TestNewChain: for every size around the inline limits, the chain holds the key and its first
// version, inline exactly when key and value fit, with slices that cannot grow into each other.
func TestNewChain(t *testing.T) {
	for _, kl := range []int{0, 1, 16, 40, 100, 112, 113, 200} {
		for _, vl := range []int{0, 1, 16, 32, 96, 112, 113, 300} {
			for _, tomb := range []bool{false, true} {
				w := Write{Key: bytes.Repeat([]byte("k"), kl), Value: bytes.Repeat([]byte("v"), vl), Delete: tomb}
				name := fmt.Sprintf("key %d value %d tomb %v", kl, vl, tomb)
				c, key := newChain(7, &w)
				eq(t, string(w.Key), string(key), name)
				eq(t, string(w.Key), c.key, name)
				eq(t, len(key), cap(key), name)
				v := c.head.Load()
				eq(t, uint64(7), v.ts, name)
				eq(t, tomb, v.tomb, name)
				eq(t, (*version)(nil), v.next.Load(), name)
				want := string(w.Value)
				if tomb {
					want = ""
				}
				eq(t, want, string(v.value), name)
				eq(t, len(v.value), cap(v.value), name)
				inline := kl+len(want) <= 112
				eq(t, inline, c.first == v, name)
				eq(t, inline, c.first != nil, name)
			}
		}
	}
}

// TestInlineFirstVersion: a first version allocated with its chain stays charged in MemBytes
// until its key leaves, retains nothing once GC unlinks it, and the accounting returns to 0.
func TestInlineFirstVersion(t *testing.T) {
	s := NewStore(nil, 0, nil)
	s.Replay(5, []Write{put("k", "five")})
	s.Replay(3, []Write{put("k", "three")}) // out of order: linked after the inline version
	s.Replay(7, []Write{put("k", "seven")})
	c := s.lookup([]byte("k"))
	if c.first == nil || c.first.ts != 5 {
		t.Fatalf("first version %+v, want the inline k@5", c.first)
	}
	eq(t, "7:seven 5:five 3:three", chainOf(s, "k"))

	eq(t, 2, s.GC()) // k@5 and k@3
	eq(t, "7:seven", chainOf(s, "k"))
	eq(t, (*version)(nil), c.first.next.Load(), "the unlinked inline version still points at k@3")
	key := int64(len("k") + keyOverhead)
	eq(t, key+int64(len("seven")+len("five"))+2*versionOverhead, s.MemBytes())
	eq(t, 1, s.Stats().Versions)

	// A second write at the inline version's ts replaces it; it stays charged.
	s.Replay(9, []Write{put("j", "a"), put("j", "bb")})
	eq(t, "9:bb", chainOf(s, "j"))
	eq(t, key+int64(len("seven")+len("five"))+2*versionOverhead+key+int64(len("a")+len("bb"))+2*versionOverhead, s.MemBytes())

	s.Replay(10, []Write{del("k"), del("j")})
	s.GC()
	eq(t, "<no key>", chainOf(s, "k"))
	eq(t, "<no key>", chainOf(s, "j"))
	eq(t, int64(0), s.MemBytes())
	eq(t, 0, s.Stats().Versions)
	eq(t, 0, s.index.len())
}
