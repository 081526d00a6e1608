package wal

import (
	"errors"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// appendTS appends one record per ts, each writing key k<ts>.
func appendTS(t *testing.T, l *Log, tss ...uint64) {
	t.Helper()
	for _, ts := range tss {
		if err := l.Append(rec(ts, fmt.Sprint("k", ts), fmt.Sprint("v", ts))); err != nil {
			t.Fatal(err)
		}
	}
}

// tailTS reads the whole tail [from, to] in chunks of chunk records and returns the ts seen.
func tailTS(t *testing.T, l *Log, from, to uint64, chunk int) ([]uint64, error) {
	t.Helper()
	var got []uint64
	for {
		recs, err := l.ReadTail(from, to, chunk)
		if err != nil {
			return got, err
		}
		for _, r := range recs {
			if string(r.Ops[0].Key) != fmt.Sprint("k", r.TS) {
				t.Fatalf("record %d holds key %q", r.TS, r.Ops[0].Key)
			}
			got = append(got, r.TS)
		}
		if len(recs) == 0 {
			return got, nil
		}
		from = recs[len(recs)-1].TS + 1
	}
}

func recordBytes(l *Log, tss ...uint64) int64 {
	var n int64
	for _, ts := range tss {
		n += 8 + int64(EncodedLen(rec(ts, fmt.Sprint("k", ts), fmt.Sprint("v", ts))))
	}
	_ = l
	return n
}

func TestReadTailRange(t *testing.T) {
	l := openTemp(t, nil)
	appendTS(t, l, 1, 2, 4, 7, 8, 9)
	for _, tc := range []struct {
		from, to uint64
		chunk    int
		want     string
	}{
		{0, 100, 2, "[1 2 4 7 8 9]"},
		{3, 8, 1, "[4 7 8]"},
		{5, 6, 10, "[]"},
		{9, 3, 10, "[]"},
		{10, 100, 10, "[]"},
	} {
		got, err := tailTS(t, l, tc.from, tc.to, tc.chunk)
		if err != nil || fmt.Sprint(got) != tc.want && !(len(got) == 0 && tc.want == "[]") {
			t.Errorf("ReadTail(%d, %d) chunk %d = %v, %v; want %s", tc.from, tc.to, tc.chunk, got, err, tc.want)
		}
	}
}

// Without retention a checkpoint deletes everything it covers, as before, and the horizon
// follows it; a reader just above it is served even though the next record is further on.
func TestTailNoRetention(t *testing.T) {
	l := openTemp(t, nil)
	appendTS(t, l, 1, 2, 5, 6)
	if err := l.Checkpoint(3, nil); err != nil {
		t.Fatal(err)
	}
	if h, err := l.TailHorizon(); err != nil || h != 2 {
		t.Fatalf("horizon %d, %v; want 2 (the newest deleted record)", h, err)
	}
	if _, err := l.ReadTail(2, 10, 0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("ReadTail below the horizon: %v, want ErrCompacted", err)
	}
	if got, err := tailTS(t, l, 3, 10, 10); err != nil || fmt.Sprint(got) != "[5 6]" {
		t.Fatalf("ReadTail(3) = %v, %v", got, err)
	}
	if want := recordBytes(l, 5, 6); l.LogBytes() != want {
		t.Fatalf("LogBytes %d, want %d", l.LogBytes(), want)
	}
}

// Retention keeps the newest records behind the checkpoint: replay still starts after the
// checkpoint, the tail serves the retained ones, LogBytes counts only what follows the
// checkpoint, and all of it survives a reopen.
func TestTailRetainRecords(t *testing.T) {
	opts := &Options{RetainRecords: 3}
	l := openTemp(t, opts)
	appendTS(t, l, 1, 2, 3, 4, 5, 6, 7, 8)
	if err := l.Checkpoint(6, nil); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log, label string) {
		t.Helper()
		if recs, last := replayAll(t, l); len(recs) != 2 || recs[0].TS != 7 || last != 8 {
			t.Fatalf("%s: replay %d records, last %d", label, len(recs), last)
		}
		if h, err := l.TailHorizon(); err != nil || h != 3 {
			t.Fatalf("%s: horizon %d, %v; want 3", label, h, err)
		}
		if got, err := tailTS(t, l, 4, 100, 2); err != nil || fmt.Sprint(got) != "[4 5 6 7 8]" {
			t.Fatalf("%s: tail from 4 = %v, %v", label, got, err)
		}
		if _, err := l.ReadTail(3, 100, 0); !errors.Is(err, ErrCompacted) {
			t.Fatalf("%s: tail from 3: %v, want ErrCompacted", label, err)
		}
	}
	check(l, "open")
	if want := recordBytes(l, 7, 8); l.LogBytes() != want {
		t.Fatalf("LogBytes %d, want %d (the records after the checkpoint)", l.LogBytes(), want)
	}
	l = reopen(t, l, opts)
	check(l, "reopened")
	// Open counts the whole bucket; the first checkpoint puts LogBytes right again, and a
	// second one at the same ts changes nothing.
	appendTS(t, l, 9, 10)
	for range 2 {
		if err := l.Checkpoint(9, nil); err != nil {
			t.Fatal(err)
		}
		if want := recordBytes(l, 10); l.LogBytes() != want {
			t.Fatalf("after reopen and checkpoint: LogBytes %d, want %d", l.LogBytes(), want)
		}
	}
	if got, err := tailTS(t, l, 7, 100, 10); err != nil || fmt.Sprint(got) != "[7 8 9 10]" {
		t.Fatalf("tail from 7 = %v, %v", got, err)
	}
	if h, _ := l.TailHorizon(); h != 6 {
		t.Fatalf("horizon %d, want 6", h)
	}
}

// RetainBytes keeps records until that many bytes are kept, whichever minimum is larger.
func TestTailRetainBytes(t *testing.T) {
	l := openTemp(t, &Options{RetainRecords: 1, RetainBytes: recordBytes(nil, 5, 6) + 1})
	appendTS(t, l, 1, 2, 3, 4, 5, 6, 7)
	if err := l.Checkpoint(6, nil); err != nil {
		t.Fatal(err)
	}
	// 6 and 5 are fewer bytes than the minimum, so 4 is kept too.
	if got, err := tailTS(t, l, 4, 100, 10); err != nil || fmt.Sprint(got) != "[4 5 6 7]" {
		t.Fatalf("tail = %v, %v", got, err)
	}
	if h, _ := l.TailHorizon(); h != 3 {
		t.Fatalf("horizon %d, want 3", h)
	}
}

// A file checkpointed before the horizon was recorded has no horizon key: its horizon is
// its checkpoint ts.
func TestTailHorizonLegacyFile(t *testing.T) {
	l := openTemp(t, nil)
	appendTS(t, l, 1, 2, 3)
	if err := l.Checkpoint(2, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketMeta).Delete(metaHorizon); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(metaCheckpoint, putU64(2))
	}); err != nil {
		t.Fatal(err)
	}
	if h, err := l.TailHorizon(); err != nil || h != 2 {
		t.Fatalf("legacy horizon %d, %v; want the checkpoint ts 2", h, err)
	}
}

func TestTailOptionsValidate(t *testing.T) {
	for _, o := range []*Options{{RetainRecords: -1}, {RetainBytes: -1}} {
		if _, err := Open(t.TempDir()+"/x.db", o); err == nil {
			t.Fatalf("Open with %+v succeeded", *o)
		}
	}
}

func TestReadTailClosed(t *testing.T) {
	l := openTemp(t, nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ReadTail(1, 10, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadTail after Close: %v", err)
	}
}
