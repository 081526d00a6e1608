package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// baseFile writes a closed file whose base holds entries, checkpointed at ts (the records
// 1..ts are appended first, so the versions are commits the file holds), and returns its
// path and bytes.
func baseFile(t *testing.T, ts uint64, entries []BaseEntry) (string, []byte) {
	t.Helper()
	l := openTemp(t, nil)
	for i := uint64(1); i <= ts; i++ {
		if err := l.Append(rec(i, "k", "v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(ts, slices.Values(entries)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(l.Path())
	if err != nil {
		t.Fatal(err)
	}
	return l.Path(), b
}

// boltUpdate runs fn in a bbolt transaction on the closed file at path: the way to damage a
// file so that bbolt itself sees nothing wrong (it keeps no checksums).
func boltUpdate(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// storedBase returns the stored (encoded) base value of key.
func storedBase(t *testing.T, path string, key []byte) []byte {
	t.Helper()
	var v []byte
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketBase).Get(key))
		return nil
	})
	if v == nil {
		t.Fatalf("no base value for %q", key)
	}
	return v
}

// wantBaseCorrupt requires err to be a *CorruptError of the base naming key.
func wantBaseCorrupt(t *testing.T, what string, err error, key []byte) {
	t.Helper()
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.Bucket != "base" || !bytes.Equal(ce.Key, key) {
		t.Fatalf("%s: %v, want ErrCorrupt naming base key %q", what, err, key)
	}
}

// TestBaseFlipEveryByte flips every byte of a stored base value (version, CRC and value), with
// three masks each, and requires Get, Scan and Verify to report ErrCorrupt naming the key, never
// a value: CRC-32C catches every error burst of up to 32 bits.
func TestBaseFlipEveryByte(t *testing.T) {
	key := []byte("apple")
	path, pristine := baseFile(t, 3, []BaseEntry{
		{Key: []byte("aaa"), Value: []byte("before"), Version: 1},
		{Key: key, Value: []byte("red fruit"), Version: 3},
		{Key: []byte("zzz"), Value: []byte("after"), Version: 2},
	})
	stored := storedBase(t, path, key)
	if len(stored) != baseHeaderLen+len("red fruit") {
		t.Fatalf("stored value of %d bytes", len(stored))
	}
	flips := 0
	for i := range stored {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			if err := os.WriteFile(path, pristine, 0o600); err != nil {
				t.Fatal(err)
			}
			damaged := bytes.Clone(stored)
			damaged[i] ^= mask
			boltUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bucketBase).Put(key, damaged) })
			l, err := Open(path, nil)
			if err != nil {
				t.Fatalf("byte %d ^ %#x: Open: %v", i, mask, err)
			}
			what := fmt.Sprintf("byte %d ^ %#x", i, mask)
			_, _, _, err = l.Get(key)
			wantBaseCorrupt(t, what+": Get", err, key)
			wantBaseCorrupt(t, what+": Scan", l.Scan(nil, nil, 0, func(_, _ []byte, _ uint64) bool { return true }), key)
			wantBaseCorrupt(t, what+": Verify", l.Verify(), key)
			if v, ver, ok, err := l.Get([]byte("zzz")); err != nil || !ok || string(v) != "after" || ver != 2 {
				t.Fatalf("%s: an undamaged key reads %q@%d %v %v", what, v, ver, ok, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			flips++
		}
	}
	t.Logf("%d flips of a %d-byte stored value: every one ErrCorrupt naming the key on Get, Scan and Verify", flips, len(stored))
}

// TestBaseVersionNewerThanAnyCommit: a stored version above every commit the file holds (the
// checkpoint ts and the newest log record), under a matching CRC, is ErrCorrupt naming the key
// — not mvcc's "snapshot too old", which would leave the key stuck and blame the reader.
func TestBaseVersionNewerThanAnyCommit(t *testing.T) {
	key := []byte("k1")
	path, _ := baseFile(t, 5, []BaseEntry{{Key: key, Value: []byte("v"), Version: 5}})
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBase).Put(key, appendBase(nil, key, 5|1<<56, []byte("v")))
	})
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, _, _, err = l.Get(key)
	wantBaseCorrupt(t, "Get", err, key)
	if !strings.Contains(err.Error(), "newer than any commit") {
		t.Fatalf("Get: %v, want it to say the version is newer than any commit", err)
	}
	wantBaseCorrupt(t, "Verify", l.Verify(), key)
	// A version up to the newest log record is legitimate (a checkpoint that did not finish
	// writes such versions ahead of meta): appending ts 6..9 makes version 9 acceptable.
	for ts := uint64(6); ts <= 9; ts++ {
		if err := l.Append(rec(ts, "other", "x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(9, slices.Values([]BaseEntry{{Key: key, Value: []byte("w"), Version: 9}})); err != nil {
		t.Fatal(err)
	}
	if v, ver, ok, err := l.Get(key); err != nil || !ok || ver != 9 || string(v) != "w" {
		t.Fatalf("after a checkpoint at 9: %q@%d %v %v", v, ver, ok, err)
	}
}

// TestBaseValueUnderAnotherKey: the CRC covers the key, so a value found under another key (a
// flipped key byte, a misdirected write) is ErrCorrupt naming the key it was found under.
func TestBaseValueUnderAnotherKey(t *testing.T) {
	path, _ := baseFile(t, 2, []BaseEntry{{Key: []byte("apple"), Value: []byte("red"), Version: 2}})
	stored := storedBase(t, path, []byte("apple"))
	moved := []byte("apPle")
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBase)
		if err := b.Delete([]byte("apple")); err != nil {
			return err
		}
		return b.Put(moved, stored)
	})
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, _, _, err = l.Get(moved)
	wantBaseCorrupt(t, "Get", err, moved)
	wantBaseCorrupt(t, "Verify", l.Verify(), moved)
}

// TestVerify: a sound file verifies clean; damage in the base, in a retained log record behind
// the checkpoint (which no read touches) and in meta is each reported, joined; more than 100
// damaged entries are reported as the first 100.
func TestVerify(t *testing.T) {
	l := openTemp(t, &Options{RetainRecords: 10})
	var es []BaseEntry
	for i := range 150 {
		es = append(es, BaseEntry{Key: fmt.Appendf(nil, "key%03d", i), Value: []byte("v"), Version: 4})
	}
	for ts := uint64(1); ts <= 6; ts++ {
		if err := l.Append(rec(ts, "logkey", fmt.Sprintf("v%d", ts))); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(4, slices.Values(es)); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify of a sound file: %v", err)
	}
	path := l.Path()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	pristine, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// One damaged base value, one damaged retained record (ts 2, behind the checkpoint), one
	// malformed meta value.
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		k := []byte("key007")
		v := bytes.Clone(tx.Bucket(bucketBase).Get(k))
		v[len(v)-1] ^= 1
		if err := tx.Bucket(bucketBase).Put(k, v); err != nil {
			return err
		}
		r := bytes.Clone(tx.Bucket(bucketLog).Get(putU64(2)))
		r[len(r)-1] ^= 1
		if err := tx.Bucket(bucketLog).Put(putU64(2), r); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaHorizon, []byte{1})
	})
	err = reopenVerify(t, path)
	var ce *CorruptError
	if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("Verify of a damaged file: %v", err)
	}
	for _, want := range []string{`bucket "base" key "key007"`, "log record ts 2", `bucket "meta" key "horizon"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Verify: %v\nwant it to name %s", err, want)
		}
	}

	// Every base value damaged: 150 damaged entries, 100 reported.
	if err := os.WriteFile(path, pristine, 0o600); err != nil {
		t.Fatal(err)
	}
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBase)
		for _, e := range es {
			if err := b.Put(e.Key, []byte("short")); err != nil {
				return err
			}
		}
		return nil
	})
	err = reopenVerify(t, path)
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != maxVerifyErrors {
		t.Fatalf("Verify of 150 damaged entries reported %d, want %d", n, maxVerifyErrors)
	}
}

// reopenVerify opens path, runs Verify and closes it.
func reopenVerify(t *testing.T, path string) error {
	t.Helper()
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.Verify()
	if cerr := l.Close(); cerr != nil {
		t.Fatal(cerr)
	}
	return err
}

// TestVerifyClosed: Verify of a closed log is ErrClosed, not damage.
func TestVerifyClosed(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "x.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Verify after Close: %v", err)
	}
}
