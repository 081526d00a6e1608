package wal

import (
	"encoding/binary"
	"hash/crc32"
	"strconv"
)

// recordFormat is the first byte of every encoded record. A reader meeting any other value
// reports corruption instead of guessing.
const recordFormat byte = 1

// headerLen is the format byte plus the CRC-32C of the body.
const headerLen = 1 + 4

// Op kinds as encoded.
const (
	opPut    byte = 0
	opDelete byte = 1
)

// minOpLen is the fewest bytes an encoded op can take: kind, key length 0, value length 0.
// The decoder uses it to bound an op count before allocating.
const minOpLen = 3

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Op is one write of a committed transaction.
type Op struct {
	Key    []byte
	Value  []byte // nil for a delete
	Delete bool
}

// Record is one committed transaction: its commit timestamp, its ID and its writes.
type Record struct {
	TS    uint64
	TxnID uint64
	Ops   []Op
}

// EncodedLen returns the exact number of bytes AppendRecord will append for r.
func EncodedLen(r *Record) int {
	n := headerLen + uvarintLen(r.TS) + uvarintLen(r.TxnID) + uvarintLen(uint64(len(r.Ops)))
	for i := range r.Ops {
		op := &r.Ops[i]
		n += 1 + uvarintLen(uint64(len(op.Key))) + len(op.Key)
		if !op.Delete {
			n += uvarintLen(uint64(len(op.Value))) + len(op.Value)
		} else {
			n++ // value length 0
		}
	}
	return n
}

// AppendRecord appends the encoding of r to dst and returns the extended slice:
//
//	format byte | CRC-32C(body), 4 bytes big-endian | body
//	body = uvarint ts | uvarint txn id | uvarint op count | op...
//	op   = kind byte (0 put, 1 delete) | uvarint key len | key | uvarint value len | value
//
// A delete is encoded with value length 0 whatever r's Value holds.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = growBytes(dst, EncodedLen(r))
	start := len(dst)
	dst = append(dst, recordFormat, 0, 0, 0, 0)
	body := len(dst)
	dst = binary.AppendUvarint(dst, r.TS)
	dst = binary.AppendUvarint(dst, r.TxnID)
	dst = binary.AppendUvarint(dst, uint64(len(r.Ops)))
	for i := range r.Ops {
		op := &r.Ops[i]
		kind, val := opPut, op.Value
		if op.Delete {
			kind, val = opDelete, nil
		}
		dst = append(dst, kind)
		dst = binary.AppendUvarint(dst, uint64(len(op.Key)))
		dst = append(dst, op.Key...)
		dst = binary.AppendUvarint(dst, uint64(len(val)))
		dst = append(dst, val...)
	}
	binary.BigEndian.PutUint32(dst[start+1:], crc32.Checksum(dst[body:], castagnoli))
	return dst
}

// DecodeRecord decodes one record encoded by AppendRecord. It checks the format byte, the
// CRC and every length against the bytes left before allocating, so corrupt or hostile input
// yields an error wrapping ErrCorrupt (a *CorruptError), never a panic or an allocation larger
// than the input justifies. The decoded Keys and Values alias b: copy them, or do not modify
// b, while they are in use.
func DecodeRecord(b []byte) (*Record, error) {
	r := new(Record)
	var slab []Op
	if err := decodeRecord(b, r, &slab); err != nil {
		return nil, err
	}
	return r, nil
}

// decodeRecord decodes b into r, taking r.Ops from *slab when it has room so that a caller
// decoding many records (Replay) allocates one slab per chunk rather than a slice per record.
func decodeRecord(b []byte, r *Record, slab *[]Op) error {
	if len(b) < headerLen {
		return recordErr("record shorter than its header")
	}
	if b[0] != recordFormat {
		return recordErr("unknown record format " + itoa(uint64(b[0])))
	}
	body := b[headerLen:]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[1:headerLen]) {
		return recordErr("checksum mismatch")
	}
	d := decoder{b: body}
	r.TS = d.uvarint()
	r.TxnID = d.uvarint()
	n := d.uvarint()
	if d.err != "" {
		return recordErr(d.err)
	}
	// Bound the count by what the remaining bytes can hold before allocating anything.
	if n > uint64(len(d.b)/minOpLen) {
		return recordErr("op count " + itoa(n) + " exceeds what the record can hold")
	}
	r.Ops = takeOps(slab, int(n))
	for i := range r.Ops {
		d.op(&r.Ops[i])
		if d.err != "" {
			return recordErr("op " + itoa(uint64(i)) + ": " + d.err)
		}
	}
	if len(d.b) != 0 {
		return recordErr(itoa(uint64(len(d.b))) + " trailing bytes")
	}
	return nil
}

// takeOps returns a zeroed []Op of length n with capacity n, carved from *slab when possible.
func takeOps(slab *[]Op, n int) []Op {
	if n == 0 {
		return nil
	}
	s := *slab
	if cap(s)-len(s) < n {
		return make([]Op, n)
	}
	ops := s[len(s) : len(s)+n : len(s)+n]
	*slab = s[:len(s)+n]
	return ops
}

// decoder reads uvarints and byte strings from b, recording the first failure in err.
type decoder struct {
	b   []byte
	err string
}

func (d *decoder) uvarint() uint64 {
	if d.err != "" {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = "bad uvarint"
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != "" {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.err = "length " + itoa(n) + " exceeds the " + itoa(uint64(len(d.b))) + " bytes left"
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) op(op *Op) {
	if len(d.b) == 0 {
		d.err = "truncated"
		return
	}
	kind := d.b[0]
	d.b = d.b[1:]
	switch kind {
	case opPut:
		op.Key = d.bytes()
		op.Value = d.bytes()
	case opDelete:
		op.Key = d.bytes()
		op.Delete = true
		if v := d.bytes(); len(v) != 0 && d.err == "" {
			d.err = "delete carries a value"
		}
	default:
		d.err = "unknown op kind " + itoa(uint64(kind))
	}
}

func recordErr(reason string) error {
	return &CorruptError{Bucket: "log", Reason: reason}
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// growBytes makes room for n more bytes in one allocation.
func growBytes(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
