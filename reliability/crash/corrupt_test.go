package crash_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/wal"
)

// The corruption test models a torn or rotted log record that bbolt itself stores fine (bbolt
// has no page checksums): it rewrites one record's value in the log bucket with one byte
// flipped, then opens the database. The promises:
//
//   - a damaged record that recovery replays (ts above the checkpoint) fails Open with
//     ErrCorrupt, as a *CorruptError naming the file and that record's ts;
//   - a damaged record behind the checkpoint (kept only for Watch) leaves Open and every read
//     intact — the base holds its effect — and a Watch that reaches it either delivers exactly
//     the original events or stops with ErrCorrupt naming it: never different data.
//
// Each flip is tried on a fresh copy of one pristine file. All flips run in one child
// process, so a panic or fatal fault in Open fails this test (naming the flip) rather than
// killing the test binary.
//
//	TXKV_FLIPS=1000 go test -run TestLogRecordFlips ./reliability/crash   (default 200)

const flipChildEnv = "TXKV_FLIP_SRC" // the pristine file; set only in the child

func TestLogRecordFlips(t *testing.T) {
	if os.Getenv(flipChildEnv) != "" {
		t.Skip("this is the child")
	}
	flips := envInt(t, "TXKV_FLIPS", 200)
	seed := testSeed(t)
	src := pristineBank(t, seed)
	if fi, err := os.Stat(src); err == nil {
		t.Logf("pristine file: %d bytes", fi.Size())
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLogRecordFlipsChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), flipChildEnv+"="+src, "TXKV_FLIPS="+strconv.Itoa(flips),
		"TXKV_SEED="+strconv.FormatUint(seed, 10))
	start := time.Now()
	out, err := cmd.CombinedOutput()
	text := string(out)
	if err != nil || !strings.Contains(text, "--- PASS: TestLogRecordFlipsChild") {
		last := text[strings.LastIndex(text, "flip "):]
		if len(text) > 8000 {
			text = text[:2000] + "\n…\n" + text[len(text)-6000:]
		}
		t.Fatalf("flip child failed (%v); last flip started: %.200s\n%s", err, last, text)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "flips:") {
			t.Log(strings.TrimSpace(line))
		}
	}
	t.Logf("%d flips in %v", flips, time.Since(start).Round(time.Millisecond))
}

// pristineBank builds the file to damage: a bank whose log holds records behind the
// checkpoint (a child that closed cleanly; Watch retention keeps them) and records after it
// (a child killed mid-run: recovery must replay them).
func pristineBank(t *testing.T, seed uint64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pristine.db")
	seedBank(t, path)
	acked := map[string]bool{}
	clean := childSpec{Path: path, Cycle: 0, Seed: seed, Rounds: 1, PerRound: 15}
	if res := runChild(t, clean, nil, 0, acked, waitLimit); !res.done {
		t.Fatal("the clean child did not finish")
	}
	killed := childSpec{Path: path, Cycle: 1, Seed: seed, Rounds: 1, PerRound: 200}
	if res := runChild(t, killed, nil, 100, acked, waitLimit); !res.killed {
		t.Fatal("the killed child was not killed")
	}
	return path
}

// logRecord is one record of the pristine log.
type logRecord struct {
	ts    uint64
	value []byte
}

// TestLogRecordFlipsChild is the child of TestLogRecordFlips.
func TestLogRecordFlipsChild(t *testing.T) {
	src := os.Getenv(flipChildEnv)
	if src == "" {
		t.Skip("run by TestLogRecordFlips")
	}
	flips := envInt(t, "TXKV_FLIPS", 200)
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, 0x666c6970))
	recs, ckptTS := readLog(t, src)
	want := pristineState(t, src)
	orig, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var replayed, behind int
	for i := range flips {
		r := recs[rng.IntN(len(recs))]
		off := rng.IntN(len(r.value))
		mask := byte(1 + rng.IntN(255))
		fmt.Printf("flip %d: record ts %d byte %d of %d ^ %#02x\n", i, r.ts, off, len(r.value), mask)
		path := filepath.Join(t.TempDir(), "flipped.db")
		writeSparse(t, path, orig)
		damaged := bytes.Clone(r.value)
		damaged[off] ^= mask
		rewriteLog(t, path, r.ts, damaged)
		if r.ts > ckptTS {
			replayed++
			expectOpenCorrupt(t, path, r.ts)
		} else {
			behind++
			expectIntactReads(t, path, want, r)
		}
	}
	t.Logf("flips: %d in replayed records (all reported as ErrCorrupt naming the record), "+
		"%d in records behind checkpoint ts %d (reads intact, Watch exact or ErrCorrupt); %d log records",
		replayed, behind, ckptTS, len(recs))
}

// readLog returns the log records and the checkpoint ts of a closed txkv file.
func readLog(t *testing.T, path string) ([]logRecord, uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var recs []logRecord
	var ckpt uint64
	err = db.View(func(tx *bolt.Tx) error {
		ckpt = binary.BigEndian.Uint64(tx.Bucket([]byte("meta")).Get([]byte("checkpoint")))
		return tx.Bucket([]byte("log")).ForEach(func(k, v []byte) error {
			recs = append(recs, logRecord{ts: binary.BigEndian.Uint64(k), value: bytes.Clone(v)})
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var after int
	for _, r := range recs {
		if r.ts > ckpt {
			after++
		}
	}
	if after == 0 || after == len(recs) {
		t.Fatalf("pristine log: %d records, %d after checkpoint ts %d: want both kinds", len(recs), after, ckpt)
	}
	return recs, ckpt
}

// pristineState is the hash of the undamaged file's state. Open and Close checkpoint, so it
// works on a copy.
func pristineState(t *testing.T, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pristine-copy.db")
	copyFile(t, src, path)
	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatalf("Open of the pristine file: %v", err)
	}
	kvs, err := readAll(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return hashState(kvs)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeSparse(t, to, b)
}

// writeSparse writes b to a new file at path, leaving its all-zero pages as holes: bbolt
// grows a file in large steps, and most of a small database's file is never written, so this
// keeps each flip's copy cheap. The file reads back exactly as b.
func writeSparse(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	var zero [page]byte
	for off := 0; off < len(b); off += page {
		blk := b[off:min(off+page, len(b))]
		if bytes.Equal(blk, zero[:len(blk)]) {
			continue
		}
		if _, err := f.WriteAt(blk, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// rewriteLog replaces the value of log record ts, through bbolt, so the file stays a valid
// bbolt file and only txkv's own checks can see the damage.
func rewriteLog(t *testing.T, path string, ts uint64, value []byte) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("log")).Put(binary.BigEndian.AppendUint64(nil, ts), value)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// expectOpenCorrupt: recovery must refuse the file, naming the damaged record.
func expectOpenCorrupt(t *testing.T, path string, ts uint64) {
	t.Helper()
	db, err := txkv.Open(path, nil)
	if err == nil {
		kvs, rerr := readAll(db)
		_ = db.Close()
		t.Fatalf("Open succeeded over damaged record ts %d (%d keys read, %v): the damage went unnoticed", ts, len(kvs), rerr)
	}
	var ce *txkv.CorruptError
	if !errors.Is(err, txkv.ErrCorrupt) || !errors.As(err, &ce) {
		t.Fatalf("damaged record ts %d: Open: %v, want a *CorruptError", ts, err)
	}
	if ce.TS != ts || ce.Path != path || ce.Bucket != "log" {
		t.Fatalf("damaged record ts %d: %v names ts %d in %q bucket %q", ts, err, ce.TS, ce.Path, ce.Bucket)
	}
}

// expectIntactReads: a damaged record behind the checkpoint must not change what reads
// return, and Watch must not deliver anything but the original record's events.
func expectIntactReads(t *testing.T, path, want string, r logRecord) {
	t.Helper()
	db, err := txkv.Open(path, nil)
	if err != nil {
		t.Fatalf("damaged record ts %d behind the checkpoint: Open: %v", r.ts, err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	kvs, err := readAll(db)
	if err != nil {
		t.Fatalf("damaged record ts %d behind the checkpoint: reads: %v", r.ts, err)
	}
	if got := hashState(kvs); got != want {
		t.Fatalf("damaged record ts %d behind the checkpoint: state %s, want %s: reads returned wrong data", r.ts, got, want)
	}
	orig, err := wal.DecodeRecord(r.value)
	if err != nil {
		t.Fatalf("pristine record ts %d: %v", r.ts, err)
	}
	ctx, cancel := context.WithTimeout(bg, waitLimit)
	defer cancel()
	n := 0
	for ev, err := range db.Watch(ctx, nil, r.ts) {
		if err != nil {
			var ce *txkv.CorruptError
			if !errors.As(err, &ce) || ce.TS != r.ts {
				t.Fatalf("Watch over damaged record ts %d: %v, want ErrCorrupt naming it", r.ts, err)
			}
			return
		}
		if ev.Version != r.ts {
			break // past the damaged record
		}
		if n >= len(orig.Ops) {
			t.Fatalf("Watch over damaged record ts %d: more events than its %d ops", r.ts, len(orig.Ops))
		}
		op := orig.Ops[n]
		if !bytes.Equal(ev.Key, op.Key) || !bytes.Equal(ev.Value, op.Value) || ev.Deleted != op.Delete {
			t.Fatalf("Watch over damaged record ts %d: event %d is %q=%q, the record wrote %q=%q: silently wrong data",
				r.ts, n, ev.Key, ev.Value, op.Key, op.Value)
		}
		n++
	}
	if n != len(orig.Ops) {
		t.Fatalf("Watch over damaged record ts %d: %d events, the record has %d ops", r.ts, n, len(orig.Ops))
	}
}
