package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/txkv/txkv/internal/testenv"
	bolt "go.etcd.io/bbolt"
)

// testSeed returns the seed for randomized tests: $WAL_SEED if set (to replay a failure),
// otherwise a fresh one. It is always logged.
func testSeed(t *testing.T) uint64 { return testenv.Seed(t, "WAL_SEED") }

// expectCorrupt opens path and requires a *CorruptError naming it.
func expectCorrupt(t *testing.T, path, what string) {
	t.Helper()
	l, err := Open(path, &Options{OpenTimeout: -1})
	if err == nil {
		_ = l.Close()
		t.Fatalf("%s: Open succeeded, want ErrCorrupt", what)
	}
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Path != path {
		t.Fatalf("%s: err %v, want *CorruptError naming %s", what, err, path)
	}
	t.Logf("%s: %v", what, err)
}

// populated creates a closed txkv file with n log records and n base keys and returns its path.
func populated(t *testing.T, n int) string {
	t.Helper()
	l := openTemp(t, nil)
	var entries []BaseEntry
	for i := range n {
		if err := l.Append(rec(uint64(i+1), fmt.Sprintf("log-key-%06d", i), fmt.Sprintf("log-value-%d", i))); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, BaseEntry{Key: fmt.Appendf(nil, "base%06d", i), Value: bytes.Repeat([]byte("b"), 40), Version: 1})
	}
	if err := l.Checkpoint(0, func(yield func(BaseEntry) bool) {
		for _, e := range entries {
			if !yield(e) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return l.Path()
}

func TestGarbageFilesAreCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 0))
	dir := t.TempDir()
	for i, size := range []int{1, 100, 4095, 4096, 8192, 12288, 65536, 1 << 20} {
		path := filepath.Join(dir, fmt.Sprintf("garbage%d", i))
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		expectCorrupt(t, path, fmt.Sprintf("%d random bytes", size))
	}
	path := filepath.Join(dir, "text")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database\n"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	expectCorrupt(t, path, "text file")
}

// TestTruncatedFileIsCorrupt: cutting a file short yields ErrCorrupt from Open (meta pages
// gone, root page gone) or from the first read that touches a missing page — never a crash.
func TestTruncatedFileIsCorrupt(t *testing.T) {
	src := populated(t, 3000)
	full, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	used := usedBytes(t, src)
	for _, size := range []int{100, 4096, 8192, used / 4, used / 2, lastLivePage(t, src) * 4096} {
		path := filepath.Join(t.TempDir(), "trunc")
		if err := os.WriteFile(path, full[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		err := exercise(path)
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: %v, want ErrCorrupt", size, len(full), err)
		}
		t.Logf("truncated to %d of %d bytes: %v", size, len(full), err)
	}
}

func TestForeignBoltFileIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreign.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("someone-else"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	expectCorrupt(t, path, "bbolt file of another application")
}

func TestWrongFormatVersionIsCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		key   []byte
		value []byte
	}{
		{"newer format", metaFormat, putU64(FormatVersion + 1)},
		{"malformed format", metaFormat, []byte{1}},
		{"malformed checkpoint", metaCheckpoint, []byte("x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := openTemp(t, nil)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bolt.Open(l.Path(), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(bucketMeta).Put(tc.key, tc.value)
			}); err != nil {
				t.Fatal(err)
			}
			db.Close()
			expectCorrupt(t, l.Path(), tc.name)
		})
	}
}

// TestFlippedByteInRecord: bbolt has no page checksums, so a flipped byte in a record's bytes
// on disk opens fine; Replay's CRC check catches it and names the record.
func TestFlippedByteInRecord(t *testing.T) {
	l := openTemp(t, nil)
	for ts := uint64(1); ts <= 5; ts++ {
		if err := l.Append(rec(ts, fmt.Sprintf("flipme-key-%d", ts), "some value")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	// Flip every copy (copy-on-write may leave stale ones in free pages).
	pat := []byte("flipme-key-3")
	n := 0
	for i := bytes.Index(b, pat); i >= 0; i = bytes.Index(b[i+1:], pat) + i + 1 {
		b[i+3] ^= 0x01
		n++
		if !bytes.Contains(b[i+1:], pat) {
			break
		}
	}
	if n == 0 {
		t.Fatal("record bytes not found in the file")
	}
	if err := os.WriteFile(l.Path(), b, 0o600); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(l.Path(), nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer l2.Close()
	var seen []uint64
	last, err := l2.Replay(func(r *Record) error { seen = append(seen, r.TS); return nil })
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.TS != 3 || ce.Bucket != "log" {
		t.Fatalf("Replay: %v, want *CorruptError for ts 3", err)
	}
	if len(seen) != 2 || last != 2 {
		t.Fatalf("replayed %v (last %d) before the corrupt record", seen, last)
	}
	t.Logf("%v", err)
}

// TestDamagedPagesNeverPanic overwrites random data pages (keeping bbolt's meta pages valid)
// and requires that Open, Replay, Get and Scan either work or report ErrCorrupt — never
// crash. At least one damaged file must be reported, or the test checks nothing.
func TestDamagedPagesNeverPanic(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	src := populated(t, 2000)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	used := usedBytes(t, src)
	corrupt := 0
	for round := range 20 {
		b := bytes.Clone(orig)
		for range 1 + rng.IntN(4) {
			p := 2 + rng.IntN(used/page-2)
			for j := p * page; j < (p+1)*page; j++ {
				b[j] = byte(rng.Uint32())
			}
		}
		path := filepath.Join(t.TempDir(), "damaged")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		err := exercise(path)
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("round %d: %v is not ErrCorrupt", round, err)
		}
		if err != nil {
			corrupt++
		}
	}
	t.Logf("%d of 20 damaged files reported corrupt", corrupt)
	if corrupt == 0 {
		t.Fatal("no damaged file was reported corrupt")
	}
}

// usedBytes is the high-water mark of the newest bbolt meta page: the pages in use (the file
// itself grows in larger steps).
func usedBytes(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m0, ok0 := readMeta(f, 0)
	m1, ok1 := readMeta(f, int64(m0.pageSize))
	if !ok0 || !ok1 || m0.pageSize != 4096 {
		t.Fatalf("meta pages of a fresh file: %v %v, page size %d", ok0, ok1, m0.pageSize)
	}
	m := max(m0.pgid, m1.pgid)
	return int(m) * int(m0.pageSize)
}

// lastLivePage is the highest page the file at path uses (the high-water mark may lie above
// it: pages freed by the last transactions).
func lastLivePage(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, pages, err := newestMeta(f, path)
	if err != nil {
		t.Fatal(err)
	}
	w := newTreeWalker(f, m, pages)
	if err := walkBuckets(w, "meta", "log", "base"); err != nil {
		t.Fatal(err)
	}
	last := max(m.root, m.freelist)
	for id := range w.seen {
		last = max(last, id)
	}
	return int(last)
}

func copyTestFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func exercise(path string) error {
	l, err := Open(path, &Options{OpenTimeout: -1})
	if err != nil {
		return err
	}
	defer l.Close()
	if _, err := l.Replay(func(*Record) error { return nil }); err != nil {
		return err
	}
	if _, _, _, err := l.Get([]byte("base000500")); err != nil {
		return err
	}
	return l.Scan(nil, nil, 0, func([]byte, []byte, uint64) bool { return true })
}

// TestFaultBecomesCorrupt cuts the file short behind an open Log's back, so reads touch
// mapped pages past the end of the file (SIGBUS). The fault must come back as ErrCorrupt.
func TestFaultBecomesCorrupt(t *testing.T) {
	src := populated(t, 2000)
	l, err := Open(src, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Truncate(src, 2*4096); err != nil {
		t.Fatal(err)
	}
	_, err = l.Replay(func(*Record) error { return nil })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Replay over a truncated mapping: %v", err)
	}
	if _, _, _, err := l.Get([]byte("base000500")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get over a truncated mapping: %v", err)
	}
	t.Logf("%v", err)
}

// TestBadFreelistPageFailsCleanly: a meta page whose freelist page never reached the disk (a
// power loss under SyncNone with writeback in any order left exactly that), or whose freelist
// claims more entries than its pages hold, is ErrCorrupt before bbolt reads it — bbolt would
// panic inside its Open with the file mapped and locked and no *DB to release them, so every
// later Open of the file in this process timed out on the lock. Opening twice proves the
// first Open let go.
func TestBadFreelistPageFailsCleanly(t *testing.T) {
	for _, tc := range []struct {
		name  string
		patch func(pg []byte)
	}{
		{"zeroed", func(pg []byte) { clear(pg) }},
		{"count beyond the page", func(pg []byte) { binary.NativeEndian.PutUint16(pg[10:], 4000) }},
		{"long count beyond the page", func(pg []byte) {
			binary.NativeEndian.PutUint16(pg[10:], 0xFFFF)
			binary.NativeEndian.PutUint64(pg[16:], 1<<60)
		}},
		{"overflow past the end", func(pg []byte) { binary.NativeEndian.PutUint32(pg[12:], 1<<30) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := populated(t, 10)
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			f := bytes.NewReader(b)
			m0, _ := readMeta(f, 0)
			m1, _ := readMeta(f, 4096)
			m := m0
			if m1.txid > m0.txid {
				m = m1
			}
			tc.patch(b[m.freelist*4096 : (m.freelist+1)*4096])
			path := filepath.Join(t.TempDir(), "bad-freelist.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			expectCorrupt(t, path, tc.name)
			expectCorrupt(t, path, tc.name+", again") // not "file is locked"
		})
	}
}

// TestPageTreeCycle: a branch page whose child is the branch itself — a page number that, after
// a power loss, holds an older page's content — would send bbolt's cursor down forever,
// growing its stack until the process dies of memory exhaustion (no recover catches that).
// In the log's tree, Open reports it; in the base's tree, Open reports it unless the file was
// closed cleanly (then Open does not walk the base: its cost is the dataset's), and Verify
// reports it instead of looping.
func TestPageTreeCycle(t *testing.T) {
	for _, bucket := range []string{"log", "base"} {
		t.Run(bucket, func(t *testing.T) {
			src := populated(t, 2000) // log and base both several pages deep
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			var root uint64
			boltUpdate(t, src, func(tx *bolt.Tx) error {
				root = uint64(tx.Bucket([]byte(bucket)).Root())
				return nil
			})
			pg := b[root*4096 : (root+1)*4096]
			if flags := binary.NativeEndian.Uint16(pg[8:]); flags != boltBranchFlag {
				t.Fatalf("the %s bucket's root page %d is not a branch (flags %#x)", bucket, root, flags)
			}
			binary.NativeEndian.PutUint64(pg[boltPageHeader+8:], root) // first child := itself
			path := filepath.Join(t.TempDir(), "cycle.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if bucket == "log" {
				expectCorrupt(t, path, "a cycle in the log's tree")
				expectCorrupt(t, path, "a cycle in the log's tree, again")
				return
			}
			unclean := filepath.Join(t.TempDir(), "unclean.db")
			copyTestFile(t, path, unclean)
			boltUpdate(t, unclean, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaClean) })
			expectCorrupt(t, unclean, "a cycle in the base's tree of a file not closed cleanly")
			l, err := Open(path, nil) // closed cleanly: Open does not walk the base
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			err = l.Verify()
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "reached twice") {
				t.Fatalf("Verify of a base tree with a cycle: %v", err)
			}
		})
	}
}

// TestCleanMark: a SyncAlways Close marks the file clean (so the next Open need not walk the
// base's tree); Open removes the mark before anything else; SyncNone, which never fsyncs,
// never marks; a log whose reads found damage does not either.
func TestCleanMark(t *testing.T) {
	marked := func(path string) bool {
		var ok bool
		boltUpdate(t, path, func(tx *bolt.Tx) error {
			ok = tx.Bucket(bucketMeta).Get(metaClean) != nil
			return nil
		})
		return ok
	}
	l := openTemp(t, nil)
	if err := l.Append(rec(1, "k", "v")); err != nil {
		t.Fatal(err)
	}
	path := l.Path()
	if err := l.Close(); err != nil || !marked(path) {
		t.Fatalf("SyncAlways Close: %v, marked %v", err, marked(path))
	}
	l, err := Open(path, &Options{Sync: SyncNone})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil || marked(path) {
		t.Fatalf("SyncNone Open and Close: %v, marked %v: want the mark removed and not rewritten", err, marked(path))
	}
	l, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.damaged.Store(true) // as a read that met ErrCorrupt leaves it
	if err := l.Close(); err != nil || marked(path) {
		t.Fatalf("Close of a damaged log: %v, marked %v", err, marked(path))
	}
}
