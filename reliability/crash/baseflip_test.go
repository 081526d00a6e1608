package crash_test

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv"
)

// TestBaseFlips models bit rot in the checkpointed base: one byte of one stored base value —
// its version, its CRC or the value itself — flipped on disk in a file bbolt still reads
// fine (bbolt keeps no checksums). Every flip must be detected, never returned as data:
//
//   - Get of the damaged key is ErrCorrupt naming it (after a clean Close every key's newest
//     version is in the base, so the read reaches the damaged bytes);
//   - a Scan over it is ErrCorrupt naming it, and DB.Verify reports it;
//   - every other key reads exactly as in the undamaged file.
//
// Each flip damages a fresh copy of one pristine bank file.
//
//	TXKV_BASE_FLIPS=10000 go test -run TestBaseFlips ./reliability/crash   (default 1000)
//	TXKV_SEED=<seed> ...                                                   replay the flips
func TestBaseFlips(t *testing.T) {
	flips := envInt(t, "TXKV_BASE_FLIPS", 1000)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x62617365))
	src := pristineBase(t, seed)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	base := readBase(t, src)
	want := map[string][]byte{}
	for _, e := range base {
		want[string(e.key)] = e.value
	}
	start := time.Now()
	var inHeader int
	path := filepath.Join(t.TempDir(), "flipped.db")
	for i := range flips {
		e := base[rng.IntN(len(base))]
		off := rng.IntN(len(e.stored))
		mask := byte(1 + rng.IntN(255))
		what := fmt.Sprintf("flip %d: base key %q byte %d of %d ^ %#02x", i, e.key, off, len(e.stored), mask)
		if off < 12 {
			inHeader++ // the version (8 bytes) or the CRC (4)
		}
		writeSparse(t, path, orig)
		damaged := bytes.Clone(e.stored)
		damaged[off] ^= mask
		rewriteBase(t, path, e.key, damaged)
		expectBaseCorrupt(t, what, path, e.key, want)
	}
	t.Logf("%d flips in %v (%d in versions or CRCs, %d in values), over %d base entries: every one ErrCorrupt naming the key "+
		"on Get, Scan and Verify; no other key read differently", flips, time.Since(start).Round(time.Millisecond),
		inHeader, flips-inHeader, len(base))
}

// baseEntry is one stored base value of the pristine file.
type baseEntry struct {
	key, stored []byte // stored: as bbolt holds it (version | CRC | value)
	value       []byte // what txkv reads for the key
}

// pristineBase builds the file to damage: a bank that ran transfers and closed cleanly, so
// its base holds every key's newest version and its log nothing to replay.
func pristineBase(t *testing.T, seed uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pristine.db")
	seedBank(t, path)
	acked := map[string]bool{}
	spec := childSpec{Path: path, Cycle: 0, Seed: seed, Rounds: 2, PerRound: 10, Retain: -1}
	if res := runChild(t, spec, nil, 0, acked, waitLimit); !res.done {
		t.Fatal("the pristine child did not finish")
	}
	return path
}

// readBase returns the base entries of the closed file at path, and what txkv reads for each.
func readBase(t *testing.T, path string) []baseEntry {
	t.Helper()
	var es []baseEntry
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket([]byte("log")).Stats().KeyN; n != 0 {
			return fmt.Errorf("the pristine log holds %d records: reads would not reach the base", n)
		}
		return tx.Bucket([]byte("base")).ForEach(func(k, v []byte) error {
			es = append(es, baseEntry{key: bytes.Clone(k), stored: bytes.Clone(v)})
			return nil
		})
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	tdb, err := txkv.Open(copyOf(t, path), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tdb.Close()
	for i := range es {
		if es[i].value, err = tdb.Get(bg, es[i].key); err != nil {
			t.Fatalf("pristine %q: %v", es[i].key, err)
		}
	}
	return es
}

// copyOf copies the file at path (txkv's Open and Close write to it) and returns the copy.
func copyOf(t *testing.T, path string) string {
	t.Helper()
	c := filepath.Join(t.TempDir(), "copy.db")
	copyFile(t, path, c)
	return c
}

// rewriteBase replaces key's stored base value, through bbolt, so only txkv's checksum can
// see the damage.
func rewriteBase(t *testing.T, path string, key, stored []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("base")).Put(key, stored) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// expectBaseCorrupt opens the damaged file and checks every read of it (see TestBaseFlips).
func expectBaseCorrupt(t *testing.T, what, path string, key []byte, want map[string][]byte) {
	t.Helper()
	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatalf("%s: Open: %v (the base is not read at Open)", what, err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Fatalf("%s: Close: %v", what, err)
		}
	}()
	_, err = db.Get(bg, key)
	wantCorrupt(t, what+": Get", err, key)
	err = db.View(bg, func(tx *txkv.Tx) error {
		return tx.Scan(nil, nil, func([]byte, []byte) error { return nil })
	})
	wantCorrupt(t, what+": Scan", err, key)
	wantCorrupt(t, what+": Verify", db.Verify(), key)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if k == string(key) {
			continue
		}
		if v, err := db.Get(bg, []byte(k)); err != nil || !bytes.Equal(v, want[k]) {
			t.Fatalf("%s: undamaged key %q reads %q, %v; want %q", what, k, v, err, want[k])
		}
	}
}

// wantCorrupt requires a *CorruptError of the base naming key.
func wantCorrupt(t *testing.T, what string, err error, key []byte) {
	t.Helper()
	var ce *txkv.CorruptError
	if !errors.Is(err, txkv.ErrCorrupt) || !errors.As(err, &ce) || ce.Bucket != "base" || !bytes.Equal(ce.Key, key) {
		t.Fatalf("%s: %v, want ErrCorrupt naming base key %q", what, err, key)
	}
}
