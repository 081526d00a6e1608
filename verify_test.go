package txkv_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv"
)

// A checkpointed value damaged on disk (bbolt keeps no checksums, so it opens fine) is
// ErrCorrupt naming the key on Get, on a Scan over it and in Verify — never returned as data —
// while the other keys read as before.
func TestDamagedBaseValueIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, nil)
	mustPut(t, db, "apple", "red")
	mustPut(t, db, "pear", "green")
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if err := db.Verify(); err != nil {
		t.Fatalf("Verify of a sound file: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	flipLastByte(t, path, "base", []byte("apple"))

	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	_, err := db.Get(bg, []byte("apple"))
	wantCorruptKey(t, "Get", err, "apple")
	err = db.View(bg, func(tx *txkv.Tx) error {
		return tx.Scan(nil, nil, func(_, _ []byte) error { return nil })
	})
	wantCorruptKey(t, "Scan", err, "apple")
	wantCorruptKey(t, "Verify", db.Verify(), "apple")
	wantValue(t, db, "pear", "green")
}

// flipLastByte flips the last byte of key's value in bucket, through bbolt.
func flipLastByte(t *testing.T, path, bucket string, key []byte) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		v := bytes.Clone(b.Get(key))
		v[len(v)-1] ^= 0x01
		return b.Put(key, v)
	})
	if cerr := bdb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

func wantCorruptKey(t *testing.T, what string, err error, key string) {
	t.Helper()
	var ce *txkv.CorruptError
	if !errors.Is(err, txkv.ErrCorrupt) || !errors.As(err, &ce) || string(ce.Key) != key {
		t.Fatalf("%s: %v, want ErrCorrupt naming key %q", what, err, key)
	}
}

// Once the log has failed (the disk filled, an fsync failed), Checkpoint and Close say so —
// ErrLogFailed wrapping the cause — instead of returning nil on a database that refuses
// writes; Close still closes, and the file reopens.
func TestCheckpointAndCloseReportLogFailure(t *testing.T) {
	injected := errors.New("injected: no space left on device")
	var failing atomic.Bool
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, &txkv.Options{BeforeLogCommit: func() error {
		if failing.Load() {
			return injected
		}
		return nil
	}})
	mustPut(t, db, "acked", "1")
	if err := db.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint of a healthy database: %v", err)
	}
	failing.Store(true)
	if err := db.Put(bg, []byte("lost"), []byte("x")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Fatalf("Put with a failing log: %v", err)
	}
	ckptErr := db.Checkpoint()
	closeErr := db.Close()
	for what, err := range map[string]error{"Checkpoint": ckptErr, "Close": closeErr} {
		if !errors.Is(err, txkv.ErrLogFailed) || !errors.Is(err, injected) || !strings.HasPrefix(err.Error(), "txkv: ") {
			t.Errorf("%s after the log failed: %v, want ErrLogFailed wrapping the cause", what, err)
		}
	}
	if err := db.Close(); !errors.Is(err, txkv.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	wantValue(t, db, "acked", "1")
	wantAbsent(t, db, "lost")
}

// Verify of an in-memory database finds nothing; of a closed one, ErrClosed.
func TestVerifyMemoryAndClosed(t *testing.T) {
	db := openMem(t, nil)
	if err := db.Verify(); err != nil {
		t.Fatalf("Verify in memory: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Verify(); !errors.Is(err, txkv.ErrClosed) {
		t.Fatalf("Verify after Close: %v", err)
	}
}
