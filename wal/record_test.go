package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"runtime"
	"strings"
	"testing"
)

func equalRecords(a, b *Record) bool {
	if a.TS != b.TS || a.TxnID != b.TxnID || len(a.Ops) != len(b.Ops) {
		return false
	}
	for i := range a.Ops {
		x, y := a.Ops[i], b.Ops[i]
		if x.Delete != y.Delete || !bytes.Equal(x.Key, y.Key) {
			return false
		}
		if !x.Delete && !bytes.Equal(x.Value, y.Value) {
			return false
		}
	}
	return true
}

func TestRecordRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte("v"), 100_000)
	cases := []*Record{
		{TS: 1},
		{TS: 1<<64 - 1, TxnID: 1<<64 - 1},
		rec(7, "k", "v"),
		rec(8, "k", ""),
		{TS: 9, TxnID: 3, Ops: []Op{{Key: []byte("gone"), Delete: true}}},
		{TS: 10, Ops: []Op{{Key: []byte("d"), Value: []byte("ignored"), Delete: true}, {Key: []byte("big"), Value: big}}},
		{TS: 11, Ops: []Op{{Key: bytes.Repeat([]byte("k"), 300), Value: []byte("x")}}},
	}
	for _, r := range cases {
		b := AppendRecord([]byte("prefix"), r)
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatalf("AppendRecord clobbered dst")
		}
		b = b[len("prefix"):]
		if len(b) != EncodedLen(r) {
			t.Errorf("ts %d: EncodedLen %d, encoded %d", r.TS, EncodedLen(r), len(b))
		}
		got, err := DecodeRecord(b)
		if err != nil {
			t.Fatalf("ts %d: decode: %v", r.TS, err)
		}
		if !equalRecords(r, got) {
			t.Errorf("ts %d: round trip mismatch: %+v vs %+v", r.TS, r, got)
		}
		for _, op := range got.Ops {
			if op.Delete && op.Value != nil {
				t.Errorf("ts %d: decoded delete carries value %q", r.TS, op.Value)
			}
		}
	}
}

// reseal recomputes the CRC so a test can reach the checks behind it.
func reseal(b []byte) []byte {
	b = bytes.Clone(b)
	binary.BigEndian.PutUint32(b[1:5], crc32.Checksum(b[5:], castagnoli))
	return b
}

// sealed builds a record from a raw body with a correct header.
func sealed(body ...byte) []byte {
	return reseal(append([]byte{recordFormat, 0, 0, 0, 0}, body...))
}

func TestDecodeRecordCorrupt(t *testing.T) {
	good := AppendRecord(nil, rec(5, "key", "value"))
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x20; return b }
	cases := []struct {
		name, reason string
		b            []byte
	}{
		{"empty", "shorter than its header", nil},
		{"short header", "shorter than its header", good[:3]},
		{"wrong format", "unknown record format", append([]byte{9}, good[1:]...)},
		{"flipped body byte", "checksum", flip(len(good) - 2)},
		{"flipped crc byte", "checksum", flip(2)},
		{"truncated body", "checksum", good[:len(good)-1]},
		{"truncated resealed", "exceeds", reseal(good[:len(good)-1])},
		{"trailing bytes", "trailing", reseal(append(bytes.Clone(good), 0))},
		{"no ts", "bad uvarint", sealed()},
		{"unterminated uvarint", "bad uvarint", sealed(1, 2, 0x80)},
		{"overlong uvarint", "bad uvarint", sealed(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
		{"op count beyond input", "op count", sealed(1, 2, 5, 0, 0, 0)},
		{"huge op count", "op count", sealed(append([]byte{1, 2}, binary.AppendUvarint(nil, 1<<62)...)...)},
		{"bad op kind", "unknown op kind", sealed(1, 2, 1, 7, 0, 0)},
		{"key length beyond input", "exceeds", sealed(1, 2, 1, 0, 50, 'k', 0)},
		{"value length beyond input", "exceeds", sealed(1, 2, 1, 0, 1, 'k', 9, 'v')},
		{"delete with value", "delete carries a value", sealed(1, 2, 1, 1, 1, 'k', 1, 'v')},
		{"op truncated", "truncated", sealed(1, 2, 2, 0, 2, 'k', 'k', 1, 'v')},
		{"op count beyond input (3 bytes each)", "op count", sealed(1, 2, 2, 0, 0, 0)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeRecord(tc.b)
			if err == nil {
				t.Fatalf("decoded %+v, want error", r)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err %v is not ErrCorrupt", err)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tc.reason) {
				t.Fatalf("err %v: want reason containing %q", err, tc.reason)
			}
		})
	}
}

// TestDecodeHostileCountAllocatesLittle: a record claiming 2^40 ops is rejected before the op
// slice is allocated.
func TestDecodeHostileCountAllocatesLittle(t *testing.T) {
	b := sealed(append([]byte{1, 2}, binary.AppendUvarint(nil, 1<<40)...)...)
	b = reseal(append(b, make([]byte, 64)...))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 100 {
		if _, err := DecodeRecord(b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err = %v", err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 4096 {
		t.Fatalf("decoding a hostile record allocated %d bytes per call", per)
	}
}

func TestDecodeAllocs(t *testing.T) {
	b := AppendRecord(nil, rec(5, "a", "1", "b", "2", "c", "3"))
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := DecodeRecord(b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 { // the Record and its Ops slice
		t.Fatalf("DecodeRecord: %v allocs, want <= 2", allocs)
	}
}

// FuzzDecodeRecord: arbitrary input never panics; an error is always ErrCorrupt; a decoded
// record never claims more bytes than the input holds, and it re-encodes to an equal record.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(AppendRecord(nil, rec(1, "k", "v")))
	f.Add(AppendRecord(nil, &Record{TS: 2, Ops: []Op{{Key: []byte("d"), Delete: true}}}))
	f.Add(AppendRecord(nil, &Record{TS: 3}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		total := 0
		for _, op := range r.Ops {
			total += len(op.Key) + len(op.Value)
		}
		if total > len(b) || len(r.Ops)*minOpLen > len(b) || cap(r.Ops) > len(b)/minOpLen {
			t.Fatalf("decoded %d ops, %d bytes, cap %d from %d input bytes", len(r.Ops), total, cap(r.Ops), len(b))
		}
		again := AppendRecord(nil, r)
		if len(again) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(again))
		}
		r2, err := DecodeRecord(again)
		if err != nil || !equalRecords(r, r2) {
			t.Fatalf("re-encode round trip: %v, %+v vs %+v", err, r, r2)
		}
	})
}
