package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Fuzz targets for every parser of the file besides the commit record (FuzzDecodeRecord in
// record_test.go): the base value (version + value), bbolt's meta page as precheckFile reads
// it, the meta bucket's format and checkpoint values, and whole files given to Open. The
// property is always the same: any input yields a result or ErrCorrupt, never a panic, and a
// result is exactly what the bytes say.
//
//	go test -run '^$' -fuzz '^FuzzSplitBase$' -fuzztime 10s ./wal   (one target at a time)

// FuzzSplitBase: a stored base value is accepted exactly when it is at least its 12-byte
// header and its CRC-32C matches the key, version and value; then it splits into exactly
// those. Anything else is ErrCorrupt naming the key. Sealing (appendBase) and splitting
// round-trip, and any one flipped byte of a sealed value or of its key is caught.
func FuzzSplitBase(f *testing.F) {
	f.Add([]byte("k"), binary.BigEndian.AppendUint64(nil, 7))
	f.Add([]byte("k"), appendBase(nil, []byte("k"), 1<<40, []byte("value")))
	f.Add([]byte("key"), appendBase(nil, []byte("key"), 3, nil))
	f.Add([]byte("k"), []byte{1, 2, 3})
	f.Add([]byte{}, []byte{})
	l := &Log{path: "fuzz.db"}
	f.Fuzz(func(t *testing.T, key, v []byte) {
		val, ver, err := l.splitBase(key, v)
		sound := len(v) >= baseHeaderLen &&
			binary.BigEndian.Uint32(v[versionLen:]) == baseCRC(key, binary.BigEndian.Uint64(v), v[baseHeaderLen:])
		if !sound {
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.Bucket != "base" || !bytes.Equal(ce.Key, key) {
				t.Fatalf("unsound %d-byte base value: %v, want ErrCorrupt naming key %q", len(v), err, key)
			}
		} else if err != nil || ver != binary.BigEndian.Uint64(v) || !bytes.Equal(val, v[baseHeaderLen:]) {
			t.Fatalf("sound base value %x split into version %d value %x, %v", v, ver, val, err)
		}
		// Whatever the input, sealing key | version | rest round-trips, and one flipped
		// byte anywhere in the sealed value or the key fails the check.
		if len(v) < versionLen {
			return
		}
		sealed := appendBase(nil, key, binary.BigEndian.Uint64(v), v[versionLen:])
		if val, ver, err := l.splitBase(key, sealed); err != nil || ver != binary.BigEndian.Uint64(v) || !bytes.Equal(val, v[versionLen:]) {
			t.Fatalf("sealed %x: %x@%d, %v", sealed, val, ver, err)
		}
		i := int(ver % uint64(len(sealed)+len(key)))
		k2, s2 := bytes.Clone(key), bytes.Clone(sealed)
		if i < len(s2) {
			s2[i] ^= 0x5a
		} else {
			k2[i-len(s2)] ^= 0x5a
		}
		if _, _, err := l.splitBase(k2, s2); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("sealed %x with byte %d flipped: %v, want ErrCorrupt", sealed, i, err)
		}
	})
}

// metaPage builds a valid bbolt meta page (as readMeta expects it) for the seeds.
func metaPage(pageSize uint32, root, freelist, pgid, txid uint64) []byte {
	b := make([]byte, boltPageHeader+boltMetaSum+8)
	m := b[boltPageHeader:]
	ne := binary.NativeEndian
	ne.PutUint32(m[0:], boltMagic)
	ne.PutUint32(m[4:], boltVersion)
	ne.PutUint32(m[8:], pageSize)
	ne.PutUint64(m[16:], root)
	ne.PutUint64(m[32:], freelist)
	ne.PutUint64(m[40:], pgid)
	ne.PutUint64(m[48:], txid)
	h := fnv.New64a()
	_, _ = h.Write(m[:boltMetaSum])
	ne.PutUint64(m[boltMetaSum:], h.Sum64())
	return b
}

// FuzzReadMeta: readMeta accepts a meta page only if its magic, version and checksum hold
// and its page size is sane, and then reports exactly the fields in the bytes.
func FuzzReadMeta(f *testing.F) {
	f.Add(metaPage(4096, 3, 2, 4, 1))
	f.Add(metaPage(1<<25, 3, 2, 4, 1))
	f.Add(metaPage(512, 3, noFreelist, 4, 9))
	f.Add([]byte("not a meta page"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := readMeta(bytes.NewReader(b), 0)
		if !ok {
			return
		}
		if len(b) < boltPageHeader+boltMetaSum+8 {
			t.Fatalf("accepted a %d-byte meta page", len(b))
		}
		if m.pageSize < 512 || m.pageSize > 1<<24 {
			t.Fatalf("accepted page size %d", m.pageSize)
		}
		if !bytes.Equal(metaPage(m.pageSize, m.root, m.freelist, m.pgid, m.txid)[boltPageHeader:],
			b[boltPageHeader:boltPageHeader+boltMetaSum+8]) {
			t.Fatalf("accepted a meta page whose fields do not re-encode to its bytes: %+v", m)
		}
	})
}

// FuzzMetaValues: Open accepts the meta bucket's format and checkpoint values only when the
// format is an 8-byte version this build reads (1, upgraded at Open, or 2) and the checkpoint
// an 8-byte ts (then loaded as is); anything else is ErrCorrupt naming the meta key.
func FuzzMetaValues(f *testing.F) {
	f.Add(putU64(FormatVersion), putU64(0))
	f.Add(putU64(FormatVersion), putU64(^uint64(0)))
	f.Add(putU64(FormatVersion+1), putU64(0))
	f.Add(putU64(formatNoBaseCRC), putU64(9))
	f.Add([]byte{1}, putU64(5))
	f.Add(putU64(FormatVersion), []byte("x"))
	f.Add([]byte{}, []byte{})
	// A fresh log is made once and copied over one file for each input (a worker runs its
	// inputs one at a time): creating a bbolt file costs an fsync and a directory per input
	// costs the file system's journal; copying makes inputs about 5× faster here.
	tmpl := newLogFile(f)
	path := filepath.Join(f.TempDir(), "meta.db")
	f.Fuzz(func(t *testing.T, format, checkpoint []byte) {
		if err := os.WriteFile(path, tmpl, 0o600); err != nil {
			t.Fatal(err)
		}
		db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if err := meta.Put(metaFormat, format); err != nil {
				return err
			}
			return meta.Put(metaCheckpoint, checkpoint)
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		valid := len(format) == 8 && len(checkpoint) == 8 &&
			(binary.BigEndian.Uint64(format) == FormatVersion || binary.BigEndian.Uint64(format) == formatNoBaseCRC)
		l, err := Open(path, &Options{Sync: SyncNone, OpenTimeout: -1})
		if !valid {
			var ce *CorruptError
			if err == nil {
				_ = l.Close()
			}
			if !errors.As(err, &ce) || ce.Bucket != "meta" || ce.Path != path {
				t.Fatalf("format %x checkpoint %x: Open: %v, want ErrCorrupt naming the meta bucket", format, checkpoint, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("format %x checkpoint %x: Open: %v", format, checkpoint, err)
		}
		defer l.Close()
		if got := l.CheckpointTS(); got != binary.BigEndian.Uint64(checkpoint) {
			t.Fatalf("checkpoint %x loaded as %d", checkpoint, got)
		}
		if _, err := l.Replay(func(*Record) error { return nil }); err != nil {
			t.Fatalf("Replay of an empty log: %v", err)
		}
	})
}

// newLogFile returns the bytes of a freshly opened and closed log file.
func newLogFile(tb testing.TB) []byte {
	path := filepath.Join(tb.TempDir(), "template.db")
	l, err := Open(path, &Options{Sync: SyncNone})
	if err != nil {
		tb.Fatal(err)
	}
	return closeAndRead(tb, l, path)
}

// closeAndRead closes l and returns the bytes of its file.
func closeAndRead(tb testing.TB, l *Log, path string) []byte {
	tb.Helper()
	if err := l.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzOpenFile: any file given to Open, Replay, Get and Scan yields results or ErrCorrupt,
// never a panic or a hang. The seeds are a real txkv file and damaged copies of it.
func FuzzOpenFile(f *testing.F) {
	good := smallFile(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	for _, off := range []int{100, 4096 + 100, 2*4096 + 40, len(good) - 4096 + 20} {
		if off > 0 && off < len(good) {
			bad := bytes.Clone(good)
			bad[off] ^= 0xff
			f.Add(bad)
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := Open(path, &Options{Sync: SyncNone, OpenTimeout: -1, InitialMmapSize: -1})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open of %d bytes: %v is not ErrCorrupt", len(b), err)
			}
			return
		}
		defer l.Close()
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("%s: %v is not ErrCorrupt", what, err)
			}
		}
		_, err = l.Replay(func(*Record) error { return nil })
		check("Replay", err)
		_, _, _, err = l.Get([]byte("base-key-1"))
		check("Get", err)
		check("Scan", l.Scan(nil, nil, 0, func([]byte, []byte, uint64) bool { return true }))
		_, err = l.ReadTail(0, ^uint64(0), 100)
		if err != nil && !errors.Is(err, ErrCompacted) {
			check("ReadTail", err)
		}
	})
}

// smallFile returns the bytes of a small closed txkv file with log records behind and after
// a checkpoint and a few base entries.
func smallFile(tb testing.TB) []byte {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "small.db")
	l, err := Open(path, &Options{Sync: SyncNone, RetainRecords: 2})
	if err != nil {
		tb.Fatal(err)
	}
	for ts := uint64(1); ts <= 6; ts++ {
		if err := l.Append(rec(ts, "log-key", "log-value")); err != nil {
			tb.Fatal(err)
		}
		if ts == 3 {
			err := l.Checkpoint(3, func(yield func(BaseEntry) bool) {
				for i, k := range []string{"base-key-1", "base-key-2"} {
					if !yield(BaseEntry{Key: []byte(k), Value: []byte("base-value"), Version: uint64(i + 1)}) {
						return
					}
				}
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	// bbolt grows a file in large steps; the tail past the pages in use is zeros. Whole pages
	// are kept: the last page in use may end in zeros.
	b := closeAndRead(tb, l, path)
	n := (len(bytes.TrimRight(b, "\x00")) + 4095) / 4096 * 4096
	return b[:n]
}

// TestHugeValueLengthInLogPage is the regression test for a finding of FuzzOpenFile: a leaf
// page of the log bucket whose element header claims a value of ~1.9 GB (one damaged length
// field; bbolt has no page checksums, so it hands out a slice that long into its memory map).
// readChunk (Replay) and ReadTail copy the whole slice before decodeRecord's CRC can reject
// it: gigabytes are allocated and copied from whatever memory lies past the map — a stall,
// an OOM kill, or a fault — where a prompt ErrCorrupt naming the record is due. The check
// that fixes it is cheap: a value longer than the file (tx.Size()) is corrupt, before copying.
func TestHugeValueLengthInLogPage(t *testing.T) {
	good := smallFile(t)
	b := bytes.Clone(good)
	if patchLeafValueLen(b, 6, 0x72000000) == 0 {
		t.Fatal("log record ts 6 not found in any leaf page")
	}
	path := filepath.Join(t.TempDir(), "hugelen.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, &Options{Sync: SyncNone, InitialMmapSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = l.Replay(func(*Record) error { return nil })
	runtime.ReadMemStats(&after)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.TS != 6 {
		t.Errorf("Replay: %v, want ErrCorrupt naming ts 6", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("Replay allocated %d MiB for a %d-byte file", alloc>>20, len(b))
	}
}

// patchLeafValueLen sets, in every leaf element whose key is the 8-byte ts, the value length
// to n, and returns how many it patched. bbolt's leaf element is {flags, pos, ksize, vsize
// u32} with the key pos bytes after the element; small buckets are stored inline, so this
// searches the whole file for keys with an element pointing at them rather than walking pages.
func patchLeafValueLen(b []byte, ts uint64, n uint32) int {
	const elem = 16
	ne := binary.NativeEndian
	key := putU64(ts)
	patched := 0
	for off := bytes.Index(b, key); off >= 0; {
		for e := max(0, off-4096); e+elem <= off; e++ {
			if ne.Uint32(b[e:]) == 0 && int(ne.Uint32(b[e+4:])) == off-e && ne.Uint32(b[e+8:]) == 8 {
				ne.PutUint32(b[e+12:], n)
				patched++
			}
		}
		next := bytes.Index(b[off+1:], key)
		if next < 0 {
			break
		}
		off += 1 + next
	}
	return patched
}
