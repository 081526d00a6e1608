package wal

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestUpgradeFileOfCommitA58b9a3 opens a format-1 file written by this package at commit
// a58b9a3 (the last format-1 build), with its own code: records 1..100 put base/000..099,
// checkpointed at ts 100 with base/050 deleted, then records 101..110 put log/101..110 and,
// at ts 105, base/001 = "overwritten"; the file was truncated to bbolt's high-water mark and
// gzipped (testdata/format1.db.gz). Open upgrades it: every base value then carries its CRC,
// meta says format 2, the log replays as before and Verify finds nothing.
func TestUpgradeFileOfCommitA58b9a3(t *testing.T) {
	path := gunzipTestdata(t, "format1.db.gz")
	if f := metaFormatOf(t, path); f != formatNoBaseCRC {
		t.Fatalf("testdata file has format %d, want %d", f, formatNoBaseCRC)
	}
	l, err := Open(path, &Options{CheckpointChunk: 16}) // several upgrade transactions
	if err != nil {
		t.Fatalf("Open of a format-1 file: %v", err)
	}
	defer l.Close()
	if l.CheckpointTS() != 100 {
		t.Fatalf("checkpoint ts %d, want 100", l.CheckpointTS())
	}
	for i := range 100 {
		k := fmt.Appendf(nil, "base/%03d", i)
		v, ver, ok, err := l.Get(k)
		switch {
		case err != nil:
			t.Fatalf("Get(%s) after the upgrade: %v", k, err)
		case i == 50 && ok:
			t.Fatalf("base/050 was deleted, reads %q", v)
		case i != 50 && (!ok || string(v) != fmt.Sprintf("value-%d", i) || ver != uint64(i+1)):
			t.Fatalf("Get(%s) = %q@%d %v", k, v, ver, ok)
		}
	}
	recs, last := replayAll(t, l)
	if len(recs) != 10 || last != 110 || string(recs[4].Ops[1].Value) != "overwritten" {
		t.Fatalf("replay after the upgrade: %d records up to %d", len(recs), last)
	}
	if err := l.Verify(); err != nil {
		t.Fatalf("Verify after the upgrade: %v", err)
	}
	if n := l.Stats().Commits; n < 99/16 {
		t.Fatalf("%d commits: the upgrade did not run in chunks of 16", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if f := metaFormatOf(t, path); f != FormatVersion {
		t.Fatalf("format %d after the upgrade, want %d", f, FormatVersion)
	}
	assertNoMarker(t, path)
}

// format1File writes a format-1 file the way the format-1 build laid it out: the three
// buckets, meta format 1 and checkpoint ckpt, base values version | value, and log records.
func format1File(t *testing.T, ckpt uint64, base []BaseEntry, recs ...*Record) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "format1.db")
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketLog, bucketBase, bucketMeta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if err := meta.Put(metaFormat, putU64(formatNoBaseCRC)); err != nil {
			return err
		}
		if err := meta.Put(metaCheckpoint, putU64(ckpt)); err != nil {
			return err
		}
		for _, e := range base {
			v := binary.BigEndian.AppendUint64(nil, e.Version)
			if err := tx.Bucket(bucketBase).Put(e.Key, append(v, e.Value...)); err != nil {
				return err
			}
		}
		for _, r := range recs {
			if err := tx.Bucket(bucketLog).Put(putU64(r.TS), AppendRecord(nil, r)); err != nil {
				return err
			}
		}
		return nil
	})
	return path
}

func format1Base(n int, version uint64) []BaseEntry {
	var es []BaseEntry
	for i := range n {
		es = append(es, BaseEntry{Key: fmt.Appendf(nil, "key%04d", i), Value: fmt.Appendf(nil, "value %d", i), Version: version})
	}
	return es
}

// TestUpgradeResumesAfterFailure: an upgrade that fails after its first chunks (the commit of
// its third transaction fails, as ENOSPC would) fails Open; the file then says format 2 — so a
// build that reads only format 1 refuses it rather than reading checksums as values — and marks
// how far the upgrade got. The next Open resumes there and finishes: every value reads back.
func TestUpgradeResumesAfterFailure(t *testing.T) {
	base := format1Base(50, 7)
	path := format1File(t, 7, base)
	boom := errors.New("injected failure of the third upgrade transaction")
	n := 0
	_, err := Open(path, &Options{CheckpointChunk: 10, BeforeCheckpointCommit: func() error {
		if n++; n == 3 {
			return boom
		}
		return nil
	}})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "upgrading the base") {
		t.Fatalf("Open with a failing upgrade: %v", err)
	}
	if f := metaFormatOf(t, path); f != FormatVersion {
		t.Fatalf("after a partial upgrade the format is %d, want %d", f, FormatVersion)
	}
	var mark []byte
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		mark = bytes.Clone(tx.Bucket(bucketMeta).Get(metaUpgrade))
		return nil
	})
	if string(mark) != "key0019" {
		t.Fatalf("upgrade marker %q, want key0019 (two chunks of 10 done)", mark)
	}
	l, err := Open(path, &Options{CheckpointChunk: 10})
	if err != nil {
		t.Fatalf("Open resuming the upgrade: %v", err)
	}
	defer l.Close()
	for _, e := range base {
		if v, ver, ok, err := l.Get(e.Key); err != nil || !ok || ver != 7 || !bytes.Equal(v, e.Value) {
			t.Fatalf("Get(%s) after the resumed upgrade: %q@%d %v %v", e.Key, v, ver, ok, err)
		}
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertNoMarker(t, path)
}

// TestUpgradeRefusesDamage: a format-1 value that cannot be sound — shorter than its version,
// or with a version newer than any commit the file holds (the "snapshot too old" flip of the
// issue) — fails the upgrade with ErrCorrupt naming the key, instead of being sealed under a
// fresh checksum.
func TestUpgradeRefusesDamage(t *testing.T) {
	for _, tc := range []struct {
		name  string
		value []byte
	}{
		{"short", []byte{0, 0, 1}},
		{"future version", append(binary.BigEndian.AppendUint64(nil, 7|1<<56), "v"...)},
		{"version 0", append(binary.BigEndian.AppendUint64(nil, 0), "v"...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := format1File(t, 7, format1Base(5, 7))
			boltUpdate(t, path, func(tx *bolt.Tx) error {
				return tx.Bucket(bucketBase).Put([]byte("key0003"), tc.value)
			})
			_, err := Open(path, nil)
			wantBaseCorrupt(t, "Open", err, []byte("key0003"))
		})
	}
}

// TestUpgradeEmptyAndReplayed: a format-1 file with an empty base and records after its
// checkpoint upgrades in one transaction, and its log replays.
func TestUpgradeEmptyAndReplayed(t *testing.T) {
	path := format1File(t, 0, nil, rec(1, "a", "1"), rec(2, "b", "2"))
	l, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if recs, last := replayAll(t, l); len(recs) != 2 || last != 2 {
		t.Fatalf("replay: %d records up to %d", len(recs), last)
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
}

func gunzipTestdata(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".gz"))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func metaFormatOf(t *testing.T, path string) uint64 {
	t.Helper()
	var f uint64
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		f = getU64(tx.Bucket(bucketMeta).Get(metaFormat))
		return nil
	})
	return f
}

func assertNoMarker(t *testing.T, path string) {
	t.Helper()
	boltUpdate(t, path, func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta).Get(metaUpgrade); m != nil {
			t.Errorf("upgrade marker %q left after a finished upgrade", m)
		}
		return nil
	})
}
