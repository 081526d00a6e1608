package crash_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/txn"
)

// FuzzDecodeCounter: Increment's counter format is exactly 8 big-endian bytes (absent, nil,
// is 0); anything else is ErrNotCounter, never a panic, and a decoded counter re-encodes to
// the same bytes.
//
//	go test -run '^$' -fuzz '^FuzzDecodeCounter$' -fuzztime 10s ./reliability/crash
func FuzzDecodeCounter(f *testing.F) {
	f.Add(txn.EncodeCounter(0))
	f.Add(txn.EncodeCounter(-1))
	f.Add(txn.EncodeCounter(1 << 62))
	f.Add([]byte("12345"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := txn.DecodeCounter(b)
		if len(b) != 8 {
			if !errors.Is(err, txkv.ErrNotCounter) {
				t.Fatalf("%d bytes decoded as counter %d (%v), want ErrNotCounter", len(b), n, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("8 bytes: %v", err)
		}
		if !bytes.Equal(txn.EncodeCounter(n), b) {
			t.Fatalf("%x decoded as %d, which encodes as %x", b, n, txn.EncodeCounter(n))
		}
	})
}

// TestDecodeCounterAbsent: nil (an absent key) is counter 0.
func TestDecodeCounterAbsent(t *testing.T) {
	if n, err := txn.DecodeCounter(nil); n != 0 || err != nil {
		t.Fatalf("DecodeCounter(nil) = %d, %v", n, err)
	}
}
