package etcdkv_test

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/etcdkv"
)

func TestOpenNeedsPrefix(t *testing.T) {
	if _, err := etcdkv.Open(newClient(t, 0), &etcdkv.Options{}); !errors.Is(err, txkv.ErrInvalidOption) {
		t.Fatalf("Open without a prefix = %v, want ErrInvalidOption", err)
	}
	if _, err := etcdkv.Open(nil, &etcdkv.Options{Prefix: "x/"}); !errors.Is(err, txkv.ErrInvalidOption) {
		t.Fatalf("Open(nil) = %v, want ErrInvalidOption", err)
	}
}

func TestSingleKeyOps(t *testing.T) {
	db := open1(t)
	k := []byte("k")
	if _, err := db.Get(bg, k); !errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("Get of an absent key = %v", err)
	}
	if ok, err := db.CompareAndSwap(bg, k, nil, []byte("a")); !ok || err != nil {
		t.Fatalf("CAS(absent→a) = %v, %v", ok, err)
	}
	if ok, err := db.CompareAndSwap(bg, k, []byte("b"), []byte("c")); ok || err != nil {
		t.Fatalf("CAS(b→c) on a = %v, %v; want false", ok, err)
	}
	if ok, err := db.CompareAndSwap(bg, k, []byte("a"), nil); !ok || err != nil {
		t.Fatalf("CAS(a→delete) = %v, %v", ok, err)
	}
	if n, err := db.Increment(bg, []byte("n"), 5); n != 5 || err != nil {
		t.Fatalf("Increment = %d, %v", n, err)
	}
	if n, err := db.Increment(bg, []byte("n"), -2); n != 3 || err != nil {
		t.Fatalf("Increment = %d, %v", n, err)
	}
	if n, err := db.Increment(bg, []byte("n"), math.MaxInt64); err == nil || !strings.Contains(err.Error(), "overflows int64") {
		t.Fatalf("Increment past int64 = %d, %v; want an overflow error", n, err)
	}
	if n, err := db.Increment(bg, []byte("n"), 0); n != 3 || err != nil {
		t.Fatalf("after the refused overflow: %d, %v; want 3", n, err)
	}
	if err := db.Put(bg, k, []byte("xyz")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Increment(bg, k, 1); !errors.Is(err, txkv.ErrNotCounter) {
		t.Fatalf("Increment of a 3-byte value = %v, want ErrNotCounter", err)
	}
	if err := db.Put(bg, nil, []byte("v")); !errors.Is(err, txkv.ErrInvalidKey) {
		t.Fatalf("Put(nil key) = %v, want ErrInvalidKey", err)
	}
}

func TestGetVersionedAndPutIfVersion(t *testing.T) {
	db := open1(t)
	k := []byte("k")
	if err := db.Put(bg, k, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	var ver uint64
	err := db.View(bg, func(tx *txkv.Tx) error {
		var err error
		_, ver, err = tx.GetVersioned(k)
		return err
	})
	if err != nil || ver == 0 {
		t.Fatalf("GetVersioned: version %d, %v", ver, err)
	}
	tx, err := db.Begin(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var vm *txkv.VersionMismatchError
	if err := tx.PutIfVersion(k, []byte("no"), ver+100); !errors.As(err, &vm) || vm.Actual != ver {
		t.Fatalf("PutIfVersion(wrong version) = %v, want a *VersionMismatchError with Actual %d", err, ver)
	}
	if err := tx.PutIfVersion(k, []byte("v2"), ver); err != nil {
		t.Fatalf("PutIfVersion(right version): %v (the transaction must stay usable)", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if v, _ := db.Get(bg, k); string(v) != "v2" {
		t.Fatalf("after PutIfVersion: %q", v)
	}
}

// A failed commit names the key whose compare failed.
func TestConflictNamesKey(t *testing.T) {
	dbs := openN(t, 2)
	if err := dbs[0].Put(bg, []byte("x"), []byte("0")); err != nil {
		t.Fatal(err)
	}
	tx, err := dbs[0].Begin(bg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Get([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := dbs[1].Put(bg, []byte("x"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Put([]byte("y"), []byte("from x=0")); err != nil {
		t.Fatal(err)
	}
	var ce *txkv.ConflictError
	if err := tx.Commit(); !errors.As(err, &ce) || string(ce.Key) != "x" || !txkv.IsRetryable(err) {
		t.Fatalf("Commit after x changed = %v, want a *ConflictError naming x", err)
	}
}

// etcd's limits are errors that say so, before anything is sent.
func TestLimits(t *testing.T) {
	db := open1(t)
	writes := func(n int) error {
		return db.Update(bg, nil, func(tx *txkv.Tx) error {
			for i := range n {
				if err := tx.Put(fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
					return err
				}
			}
			return nil
		})
	}
	// Of the 128 compares, the transaction record takes one, each unlocked
	// written key one (its lock queue is empty), and range locks one.
	if err := writes(126); err != nil {
		t.Fatalf("a 126-write commit: %v", err)
	}
	if err := writes(127); !errors.Is(err, txkv.ErrTxnTooLarge) || !strings.Contains(err.Error(), "128") {
		t.Fatalf("a 127-write commit = %v, want ErrTxnTooLarge naming 128", err)
	}
	big := bytes.Repeat([]byte("x"), 2<<20)
	if err := db.Put(bg, []byte("big"), big); !errors.Is(err, txkv.ErrValueTooLarge) {
		t.Fatalf("Put of 2 MiB = %v, want ErrValueTooLarge", err)
	}
}

// What etcdkv does not do fails with ErrNotSupported, naming it.
func TestNotSupported(t *testing.T) {
	db := open1(t)
	if err := db.Checkpoint(); !errors.Is(err, txkv.ErrNotSupported) {
		t.Errorf("Checkpoint = %v", err)
	}
}

func TestManagedAndReadOnly(t *testing.T) {
	db := open1(t)
	err := db.View(bg, func(tx *txkv.Tx) error { return tx.Put([]byte("k"), []byte("v")) })
	if !errors.Is(err, txkv.ErrReadOnly) {
		t.Fatalf("Put in View = %v, want ErrReadOnly", err)
	}
	err = db.Update(bg, nil, func(tx *txkv.Tx) error { return tx.Commit() })
	if !errors.Is(err, txkv.ErrTxManaged) {
		t.Fatalf("Commit in Update = %v, want ErrTxManaged", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Put(bg, []byte("k"), []byte("v")); !errors.Is(err, txkv.ErrClosed) {
		t.Fatalf("Put after Close = %v, want ErrClosed", err)
	}
}

// Watch delivers committed writes with their ModRevision, resumes from a
// version, and ends with ErrCompacted when that revision is gone.
func TestWatchResumeAndCompaction(t *testing.T) {
	db := open1(t)
	cli := newClient(t, 0)
	// Watch from after the cluster's current revision, not from 1: an
	// earlier run (-count) compacted the shared cluster.
	before, err := cli.Get(bg, "any")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2", "3"} {
		if err := db.Put(bg, []byte("w/k"), []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	var first uint64
	var got []string
	for ev, err := range db.Watch(bg, []byte("w/"), uint64(before.Header.Revision)+1) {
		if err != nil {
			t.Fatal(err)
		}
		if first == 0 && string(ev.Key) == "w/k" {
			first = ev.Version
		}
		got = append(got, string(ev.Value))
		if len(got) == 3 {
			break
		}
	}
	if strings.Join(got, ",") != "1,2,3" {
		t.Fatalf("watched %v, want 1,2,3", got)
	}
	var resumed []string
	for ev, err := range db.Watch(bg, []byte("w/"), first+1) {
		if err != nil {
			t.Fatal(err)
		}
		resumed = append(resumed, string(ev.Value))
		if len(resumed) == 2 {
			break
		}
	}
	if strings.Join(resumed, ",") != "2,3" {
		t.Fatalf("resumed %v, want 2,3", resumed)
	}
	resp, err := cli.Get(bg, "any")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(bg, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	for _, err := range db.Watch(bg, []byte("w/"), first) {
		if !errors.Is(err, txkv.ErrCompacted) {
			t.Fatalf("Watch from a compacted revision = %v, want ErrCompacted", err)
		}
		break
	}
}
