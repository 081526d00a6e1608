package txn

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeCounter: Increment's counter format. Anything but 8 bytes (or
// nil, an absent key) is ErrNotCounter; 8 bytes round-trip exactly.
func FuzzDecodeCounter(f *testing.F) {
	f.Add(EncodeCounter(0))
	f.Add(EncodeCounter(-1))
	f.Add(EncodeCounter(1 << 62))
	f.Add([]byte("12345"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeCounter(b)
		if len(b) != 8 {
			if !errors.Is(err, ErrNotCounter) {
				t.Fatalf("%d bytes decoded as counter %d (%v), want ErrNotCounter", len(b), n, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("8 bytes: %v", err)
		}
		if !bytes.Equal(EncodeCounter(n), b) {
			t.Fatalf("%x decoded as %d, which encodes as %x", b, n, EncodeCounter(n))
		}
	})
}
