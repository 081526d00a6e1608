package txkv_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/txkv/txkv"
)

// The API tests: one behaviour of the public contract (architecture §2) each, on
// an in-memory DB unless the file matters.

func TestOpenInMemory(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "v")
	wantValue(t, db, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Nothing is durable: a new in-memory DB is empty.
	db2 := openMem(t, nil)
	wantAbsent(t, db2, "k")
}

func TestOpenFileCreatesMode0600(t *testing.T) {
	db, path := openFile(t, nil)
	mustPut(t, db, "k", "v")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("file mode %v, want 0600", perm)
	}
}

func TestOpenGarbageFileIsCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a bbolt file. "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := txkv.Open(path, nil)
	if err == nil {
		_ = db.Close()
		t.Fatal("Open of a garbage file succeeded")
	}
	if !errors.Is(err, txkv.ErrCorrupt) {
		t.Fatalf("Open of a garbage file: %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "txkv: ") {
		t.Fatalf("error %q lacks the txkv: prefix", err)
	}
}

// A second Open of a file this process has open fails at once with ErrInUse
// (not after bbolt's lock timeout: within one process the answer is known),
// and the first handle is unaffected; after Close the file opens again.
func TestOpenFileInUseFails(t *testing.T) {
	db, path := openFile(t, nil)
	mustPut(t, db, "k", "v")
	type result struct {
		db  *txkv.DB
		err error
	}
	ch := make(chan result, 1)
	go func() {
		db2, err := txkv.Open(path, nil)
		ch <- result{db2, err}
	}()
	r := recv(t, ch, "the second Open to give up")
	if r.err == nil {
		_ = r.db.Close()
		t.Fatal("second Open of a file in use succeeded")
	}
	if !errors.Is(r.err, txkv.ErrInUse) || errors.Is(r.err, txkv.ErrCorrupt) ||
		!strings.Contains(r.err.Error(), "already open in this process") {
		t.Fatalf("second Open: %v, want ErrInUse saying it is open in this process", r.err)
	}
	// The first handle is unaffected.
	wantValue(t, db, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2 := openAt(t, path, nil)
	defer closeQuietly(t, db2)
	wantValue(t, db2, "k", "v")
}

// Open explains what is wrong with a path that is not a database file it can
// use — a directory, a missing directory — with its own error, never
// ErrCorrupt (which would say the data is damaged).
func TestOpenBadPathsSayWhy(t *testing.T) {
	dir := t.TempDir()
	_, err := txkv.Open(dir, nil)
	if err == nil || errors.Is(err, txkv.ErrCorrupt) || !errors.Is(err, syscall.EISDIR) ||
		!strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("Open(a directory) = %v, want EISDIR, not ErrCorrupt", err)
	}
	missing := filepath.Join(dir, "no-such-dir", "db")
	_, err = txkv.Open(missing, nil)
	if err == nil || errors.Is(err, txkv.ErrCorrupt) || !errors.Is(err, fs.ErrNotExist) ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Open(in a missing directory) = %v, want fs.ErrNotExist naming the directory", err)
	}
	if os.Geteuid() == 0 {
		return // root reads and writes whatever the mode bits say
	}
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err = txkv.Open(filepath.Join(ro, "db"), nil)
	if !errors.Is(err, fs.ErrPermission) || errors.Is(err, txkv.ErrCorrupt) {
		t.Fatalf("Open(in a read-only directory) = %v, want fs.ErrPermission", err)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, nil)
	mustPut(t, db, "a", "1")
	mustPut(t, db, "b", "2")
	mustPut(t, db, "gone", "x")
	if err := db.Delete(bg, []byte("gone")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	wantValue(t, db, "a", "1")
	wantValue(t, db, "b", "2")
	wantAbsent(t, db, "gone")
}

// Versions are commit timestamps: after a reopen they must stay what they
// were, and new commits must get larger ones, whether the state came back
// from the log (a crash-like close) or from the checkpointed base.
func TestReopenKeepsVersionsMonotonic(t *testing.T) {
	for _, checkpoint := range []bool{false, true} {
		t.Run(map[bool]string{false: "log-replay", true: "checkpointed"}[checkpoint], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			db := openAt(t, path, nil)
			mustPut(t, db, "a", "1")
			mustPut(t, db, "b", "2")
			va := versionOf(t, db, "a")
			vb := versionOf(t, db, "b")
			if va == 0 || vb <= va {
				t.Fatalf("versions a=%d b=%d: want 0 < a < b", va, vb)
			}
			var err error
			if checkpoint {
				err = db.Close()
			} else {
				err = txkv.CloseWithoutCheckpoint(db)
			}
			if err != nil {
				t.Fatal(err)
			}
			db = openAt(t, path, nil)
			defer closeQuietly(t, db)
			if got := versionOf(t, db, "a"); got != va {
				t.Fatalf("after reopen version of a = %d, want %d", got, va)
			}
			mustPut(t, db, "c", "3")
			if vc := versionOf(t, db, "c"); vc <= vb {
				t.Fatalf("new commit after reopen got version %d, not above %d", vc, vb)
			}
		})
	}
}

func versionOf(t testing.TB, db *txkv.DB, key string) uint64 {
	t.Helper()
	var ver uint64
	err := db.View(bg, func(tx *txkv.Tx) error {
		_, v, err := tx.GetVersioned([]byte(key))
		if err != nil && !errors.Is(err, txkv.ErrNotFound) {
			return err
		}
		ver = v
		return nil
	})
	if err != nil {
		t.Fatalf("GetVersioned(%q): %v", key, err)
	}
	return ver
}

// Checkpoint moves the state into the base and truncates the log; the data
// (including deletions) must survive it, a reopen, and writes after it.
func TestCheckpointThenReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, nil)
	for i := range 50 {
		mustPut(t, db, keyN(i), "v1")
	}
	for i := 0; i < 50; i += 5 {
		if err := db.Delete(bg, []byte(keyN(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if n := db.Stats().Checkpoints; n == 0 {
		t.Fatalf("Stats().Checkpoints = 0 after Checkpoint")
	}
	// Writes after the checkpoint live only in the log.
	mustPut(t, db, keyN(1), "v2")
	if err := db.Delete(bg, []byte(keyN(2))); err != nil {
		t.Fatal(err)
	}
	if err := txkv.CloseWithoutCheckpoint(db); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	for i := range 50 {
		switch {
		case i%5 == 0 || i == 2:
			wantAbsent(t, db, keyN(i))
		case i == 1:
			wantValue(t, db, keyN(i), "v2")
		default:
			wantValue(t, db, keyN(i), "v1")
		}
	}
}

// A checkpoint taken while a snapshot is open must not change what the
// snapshot reads (the epoch rule of mvcc), in the memtable or the base.
func TestCheckpointDuringOpenSnapshot(t *testing.T) {
	db, _ := openFile(t, nil)
	mustPut(t, db, "a", "old")
	mustPut(t, db, "b", "old")
	tx := mustBegin(t, db, &txkv.TxOptions{ReadOnly: true})
	defer func() { _ = tx.Rollback() }()
	mustPut(t, db, "a", "new")
	if err := db.Delete(bg, []byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if got := scanAll(t, tx, nil, nil); !slices.Equal(got, []string{"a=old", "b=old"}) {
		t.Fatalf("snapshot after checkpoint reads %q, want [a=old b=old]", got)
	}
	wantValue(t, db, "a", "new")
	wantAbsent(t, db, "b")
}

func keyN(i int) string { return fmt.Sprintf("key%02d", i) }

func TestGetPutDelete(t *testing.T) {
	db := openMem(t, nil)
	wantAbsent(t, db, "k")
	mustPut(t, db, "k", "v1")
	wantValue(t, db, "k", "v1")
	mustPut(t, db, "k", "v2")
	wantValue(t, db, "k", "v2")
	if err := db.Delete(bg, []byte("k")); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, db, "k")
	// Deleting an absent key is not an error.
	if err := db.Delete(bg, []byte("never")); err != nil {
		t.Fatalf("Delete of an absent key: %v", err)
	}
}

// An empty value is a value, distinct from absence, in memory and on disk.
func TestEmptyValueIsNotAbsence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, nil)
	if err := db.Put(bg, []byte("e"), nil); err != nil {
		t.Fatal(err)
	}
	check := func(db *txkv.DB) {
		t.Helper()
		v, err := db.Get(bg, []byte("e"))
		if err != nil || len(v) != 0 || v == nil {
			t.Fatalf("Get of an empty value = %q (nil %v), %v; want a non-nil empty slice", v, v == nil, err)
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	check(db)
}

// Values returned are the caller's: modifying them, or the slices passed to
// Put, changes nothing stored.
func TestValuesAreCopied(t *testing.T) {
	db := openMem(t, nil)
	key, val := []byte("k"), []byte("value")
	if err := db.Put(bg, key, val); err != nil {
		t.Fatal(err)
	}
	key[0], val[0] = 'X', 'X'
	got, err := db.Get(bg, []byte("k"))
	if err != nil || string(got) != "value" {
		t.Fatalf("Get after mutating Put's slices = %q, %v", got, err)
	}
	got[0] = 'Y'
	wantValue(t, db, "k", "value")

	tx := mustBegin(t, db, nil)
	defer func() { _ = tx.Rollback() }()
	own := []byte("mine")
	if err := tx.Put([]byte("t"), own); err != nil {
		t.Fatal(err)
	}
	own[0] = 'X'
	if v, _ := tx.Get([]byte("t")); string(v) != "mine" {
		t.Fatalf("own write changed through the caller's slice: %q", v)
	}
}

func TestReadYourOwnWrites(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			mustPut(t, db, "a", "committed")
			mustPut(t, db, "b", "committed")
			tx := mustBegin(t, db, m.TxOptions())
			defer func() { _ = tx.Rollback() }()
			steps := []struct {
				op      func() error
				key     string
				want    string
				missing bool
			}{
				{op: func() error { return tx.Put([]byte("a"), []byte("mine")) }, key: "a", want: "mine"},
				{op: func() error { return tx.Delete([]byte("b")) }, key: "b", missing: true},
				{op: func() error { return tx.Put([]byte("b"), []byte("back")) }, key: "b", want: "back"},
				{op: func() error { return tx.Put([]byte("new"), []byte("n")) }, key: "new", want: "n"},
				{op: func() error { return tx.Delete([]byte("new")) }, key: "new", missing: true},
			}
			for i, s := range steps {
				if err := s.op(); err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				v, err := tx.Get([]byte(s.key))
				switch {
				case s.missing && !errors.Is(err, txkv.ErrNotFound):
					t.Fatalf("step %d: Get(%q) = %q, %v; want ErrNotFound", i, s.key, v, err)
				case !s.missing && (err != nil || string(v) != s.want):
					t.Fatalf("step %d: Get(%q) = %q, %v; want %q", i, s.key, v, err, s.want)
				}
			}
			// Nobody else sees the uncommitted writes.
			wantValue(t, db, "a", "committed")
			wantAbsent(t, db, "new")
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			wantValue(t, db, "a", "mine")
			wantValue(t, db, "b", "back")
			wantAbsent(t, db, "new")
		})
	}
}

// A transaction that begins after Commit returns sees the commit
// (read-your-writes across transactions), whatever the strategy.
func TestCommitVisibleToNextTransaction(t *testing.T) {
	db := openMem(t, nil)
	for i, m := range allModes {
		val := []byte{byte('a' + i)}
		if err := db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error { return tx.Put([]byte("k"), val) }); err != nil {
			t.Fatalf("%s: %v", m.Name, err)
		}
		for _, r := range allModes {
			tx := mustBegin(t, db, r.TxOptions())
			got, err := tx.Get([]byte("k"))
			_ = tx.Rollback()
			if err != nil || !bytes.Equal(got, val) {
				t.Fatalf("after a %s commit, a %s reader gets %q, %v; want %q", m.Name, r.Name, got, err, val)
			}
		}
	}
}

func TestScanBoundsAndOwnWrites(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			for _, k := range []string{"a", "b", "c", "d"} {
				mustPut(t, db, k, k+"0")
			}
			tx := mustBegin(t, db, m.TxOptions())
			defer func() { _ = tx.Rollback() }()
			for _, err := range []error{
				tx.Put([]byte("a"), []byte("a1")),   // overwrite
				tx.Put([]byte("bb"), []byte("bb1")), // insert between
				tx.Delete([]byte("c")),              // delete
				tx.Put([]byte("e"), []byte("e1")),   // insert after the last
				tx.Delete([]byte("zz")),             // delete of an absent key: no effect
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			cases := []struct {
				start, end []byte
				want       []string
			}{
				{nil, nil, []string{"a=a1", "b=b0", "bb=bb1", "d=d0", "e=e1"}},
				{[]byte("b"), []byte("d"), []string{"b=b0", "bb=bb1"}},
				{nil, []byte("b"), []string{"a=a1"}},
				{[]byte("c"), nil, []string{"d=d0", "e=e1"}},
				{[]byte("bb"), []byte("bb\x00"), []string{"bb=bb1"}},
				{[]byte("x"), nil, nil},
				{[]byte("c"), []byte("c\x00"), nil},
			}
			for _, c := range cases {
				if got := scanAll(t, tx, c.start, c.end); !slices.Equal(got, c.want) {
					t.Errorf("Scan(%q, %q) = %q, want %q", c.start, c.end, got, c.want)
				}
			}
			// An error from fn stops the scan and is returned as is.
			stop := errors.New("stop")
			var seen []string
			err := tx.Scan(nil, nil, func(k, _ []byte) error {
				seen = append(seen, string(k))
				if len(seen) == 2 {
					return stop
				}
				return nil
			})
			if err != stop || !slices.Equal(seen, []string{"a", "b"}) {
				t.Fatalf("Scan stopped by fn: err %v, saw %q", err, seen)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			view := mustBegin(t, db, &txkv.TxOptions{ReadOnly: true})
			defer func() { _ = view.Rollback() }()
			if got := scanAll(t, view, nil, nil); !slices.Equal(got, cases[0].want) {
				t.Fatalf("after commit Scan = %q, want %q", got, cases[0].want)
			}
		})
	}
}

// Optimistic and snapshot reads see the snapshot taken at Begin: a commit
// made afterwards is invisible to Get and Scan.
func TestSnapshotReadsIgnoreLaterCommits(t *testing.T) {
	for _, m := range allModes {
		if m.Strategy == txkv.Pessimistic && m.Iso == txkv.Serializable {
			continue // strict 2PL reads the latest version under its locks
		}
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			mustPut(t, db, "a", "1")
			tx := mustBegin(t, db, m.TxOptions())
			defer func() { _ = tx.Rollback() }()
			mustPut(t, db, "a", "2")
			mustPut(t, db, "b", "2")
			if v, err := tx.Get([]byte("a")); err != nil || string(v) != "1" {
				t.Fatalf("Get(a) = %q, %v; want the snapshot's 1", v, err)
			}
			if got := scanAll(t, tx, nil, nil); !slices.Equal(got, []string{"a=1"}) {
				t.Fatalf("Scan = %q, want [a=1]", got)
			}
		})
	}
}

func TestGetVersioned(t *testing.T) {
	db := openMem(t, nil)
	if v := versionOf(t, db, "k"); v != 0 {
		t.Fatalf("version of an absent key = %d, want 0", v)
	}
	mustPut(t, db, "k", "1")
	v1 := versionOf(t, db, "k")
	mustPut(t, db, "other", "x")
	if v := versionOf(t, db, "k"); v != v1 {
		t.Fatalf("version of k changed from %d to %d by a write of another key", v1, v)
	}
	mustPut(t, db, "k", "2")
	v2 := versionOf(t, db, "k")
	if v1 == 0 || v2 <= v1 {
		t.Fatalf("versions %d then %d: want 0 < v1 < v2", v1, v2)
	}
	// Inside a transaction, an own write shows its value with the committed
	// version under it.
	tx := mustBegin(t, db, nil)
	defer func() { _ = tx.Rollback() }()
	if err := tx.Put([]byte("k"), []byte("mine")); err != nil {
		t.Fatal(err)
	}
	val, ver, err := tx.GetVersioned([]byte("k"))
	if err != nil || string(val) != "mine" || ver != v2 {
		t.Fatalf("GetVersioned of an own write = %q, %d, %v; want mine, %d", val, ver, err, v2)
	}
	// A deleted key is absent: version 0 (architecture §3: absent keys have version 0).
	if err := db.Delete(bg, []byte("other")); err != nil {
		t.Fatal(err)
	}
	if v := versionOf(t, db, "other"); v != 0 {
		t.Fatalf("version of a deleted key = %d, want 0", v)
	}
}

func TestPutIfVersion(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			// Version 0 means "must be absent".
			err := db.Update(bg, m.TxOptions(), func(tx *txkv.Tx) error {
				return tx.PutIfVersion([]byte("doc"), []byte("v1"), 0)
			})
			if err != nil {
				t.Fatalf("PutIfVersion(absent, 0): %v", err)
			}
			v1 := versionOf(t, db, "doc")
			// The guide's think-time pattern: read the version, someone else
			// edits, our write with the stale version is refused.
			mustPut(t, db, "doc", "theirs")
			v2 := versionOf(t, db, "doc")
			tx := mustBegin(t, db, m.TxOptions())
			defer func() { _ = tx.Rollback() }()
			err = tx.PutIfVersion([]byte("doc"), []byte("mine"), v1)
			var vm *txkv.VersionMismatchError
			if !errors.Is(err, txkv.ErrVersionMismatch) || !errors.As(err, &vm) {
				t.Fatalf("PutIfVersion with a stale version: %v, want *VersionMismatchError", err)
			}
			if vm.Expected != v1 || vm.Actual != v2 || string(vm.Key) != "doc" {
				t.Fatalf("mismatch detail %+v, want key doc expected %d actual %d", vm, v1, v2)
			}
			if err := tx.PutIfVersion([]byte("new"), []byte("x"), 7); !errors.Is(err, txkv.ErrVersionMismatch) {
				t.Fatalf("PutIfVersion(absent, 7): %v, want ErrVersionMismatch", err)
			}
			// The transaction stays usable: reload and write with the right version.
			if err := tx.PutIfVersion([]byte("doc"), []byte("merged"), v2); err != nil {
				t.Fatalf("PutIfVersion with the current version: %v", err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("Commit after a mismatch: %v", err)
			}
			wantValue(t, db, "doc", "merged")
			wantAbsent(t, db, "new")
		})
	}
}

// After a delete the key is absent again, and version 0 means absent.
func TestPutIfVersionZeroAfterDelete(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "v")
	if err := db.Delete(bg, []byte("k")); err != nil {
		t.Fatal(err)
	}
	err := db.Update(bg, nil, func(tx *txkv.Tx) error { return tx.PutIfVersion([]byte("k"), []byte("again"), 0) })
	if err != nil {
		t.Fatalf("PutIfVersion(deleted key, 0): %v", err)
	}
	wantValue(t, db, "k", "again")
}

func TestViewIsReadOnlySnapshot(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "v")
	err := db.View(bg, func(tx *txkv.Tx) error {
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "v" {
			t.Errorf("View Get = %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sentinel := errors.New("from fn")
	if err := db.View(bg, func(*txkv.Tx) error { return sentinel }); err != sentinel {
		t.Fatalf("View returns fn's error %v, want it as is", err)
	}
}

func TestStatsCountCommitsAndAborts(t *testing.T) {
	db := openMem(t, nil)
	before := db.Stats()
	mustPut(t, db, "k", "v")
	tx := mustBegin(t, db, nil)
	_ = tx.Rollback()
	after := db.Stats()
	if after.Commits < before.Commits+1 || after.Aborts < before.Aborts+1 {
		t.Fatalf("Stats before %+v after %+v: want one more commit and abort", before, after)
	}
}

func TestLocksShowsHoldersWithLabels(t *testing.T) {
	db := openMem(t, nil)
	tx := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic, Label: "holder"})
	defer func() { _ = tx.Rollback() }()
	if err := tx.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range db.Locks() {
		if l.TxID == tx.ID() && string(l.Key) == "k" && l.Granted && l.Mode == txkv.Exclusive {
			found = l.Label == "holder"
		}
	}
	if !found {
		t.Fatalf("Locks() = %+v: want tx %d holding X on k labelled holder", db.Locks(), tx.ID())
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if l := db.Locks(); len(l) != 0 {
		t.Fatalf("Locks() after commit = %+v, want none", l)
	}
}

func TestTxIDsIncrease(t *testing.T) {
	db := openMem(t, nil)
	var last uint64
	for range 5 {
		tx := mustBegin(t, db, nil)
		if tx.ID() <= last {
			t.Fatalf("tx ID %d after %d", tx.ID(), last)
		}
		last = tx.ID()
		_ = tx.Rollback()
	}
}

// The log-failure seam: a failed log write fails the commit with
// ErrLogFailed, and the DB refuses writes from then on (PostgreSQL's
// fsyncgate lesson). Nothing acknowledged is lost, and nothing that was
// installed but never became durable is ever reported: the failed Put's
// value was visible before its batch failed (commits release their locks
// before the fsync), so a read of it fails with ErrLogFailed instead of
// returning it. Reads of durable data still work.
func TestLogFailureRefusesWrites(t *testing.T) {
	fail := make(chan struct{})
	opts := &txkv.Options{BeforeLogCommit: func() error {
		select {
		case <-fail:
			return errors.New("injected fsync failure")
		default:
			return nil
		}
	}}
	path := filepath.Join(t.TempDir(), "db")
	db := openAt(t, path, opts)
	mustPut(t, db, "acked", "1")
	close(fail)
	if err := db.Put(bg, []byte("lost"), []byte("x")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Fatalf("Put with a failing log: %v, want ErrLogFailed", err)
	}
	if err := db.Put(bg, []byte("later"), []byte("x")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Fatalf("Put after the log failed: %v, want ErrLogFailed", err)
	}
	wantValue(t, db, "acked", "1")
	if v, err := db.Get(bg, []byte("lost")); !errors.Is(err, txkv.ErrLogFailed) {
		t.Fatalf("Get of the write whose batch failed: %q, %v; want ErrLogFailed", v, err)
	}
	err := db.View(bg, func(tx *txkv.Tx) error {
		_, err := tx.Get([]byte("lost"))
		return err
	})
	if !errors.Is(err, txkv.ErrLogFailed) {
		t.Fatalf("View reading the write whose batch failed: %v; want ErrLogFailed", err)
	}
	_ = db.Close() // may report the failure; the file must still be usable
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	wantValue(t, db, "acked", "1")
	wantAbsent(t, db, "lost")
	wantAbsent(t, db, "later")
}

func TestLargeValueRoundTrip(t *testing.T) {
	db, path := openFile(t, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := db.Put(bg, []byte("big"), big); err != nil {
		t.Fatal(err)
	}
	maxKey := bytes.Repeat([]byte("k"), 32<<10)
	if err := db.Put(bg, maxKey, []byte("at MaxKeySize")); err != nil {
		t.Fatalf("Put with a key of exactly MaxKeySize: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, nil)
	defer closeQuietly(t, db)
	got, err := db.Get(bg, []byte("big"))
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("1 MiB value after reopen: %d bytes, %v", len(got), err)
	}
	if v, err := db.Get(bg, maxKey); err != nil || string(v) != "at MaxKeySize" {
		t.Fatalf("max-size key after reopen: %q, %v", v, err)
	}
}

// An empty or inverted range [start, end) with start >= end holds no key:
// Scan yields nothing, whatever the strategy (it is not an error in one
// strategy and a no-op in the others).
func TestScanEmptyRange(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			mustPut(t, db, "a", "1")
			mustPut(t, db, "b", "2")
			tx := mustBegin(t, db, m.TxOptions())
			defer func() { _ = tx.Rollback() }()
			for _, r := range [][2]string{{"a", "a"}, {"b", "a"}} {
				var got []string
				err := tx.Scan([]byte(r[0]), []byte(r[1]), func(k, _ []byte) error {
					got = append(got, string(k))
					return nil
				})
				if err != nil || len(got) != 0 {
					t.Errorf("Scan(%q, %q) = %q, %v; want nothing and no error", r[0], r[1], got, err)
				}
			}
			if err := tx.Put([]byte("c"), []byte("3")); err != nil {
				t.Fatalf("tx unusable after an empty Scan: %v", err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatalf("Commit after an empty Scan: %v", err)
			}
		})
	}
}
