package txkv_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/txkv/txkv"
)

// Bad input and misuse get a clear sentinel error (architecture §2, issue 3
// "Bad input"), never a panic, and leave the transaction usable where the
// contract says so.

// keyOps are every operation that takes a key, as func(key) error.
func keyOps(db *txkv.DB, tx *txkv.Tx) map[string]func(key []byte) error {
	return map[string]func([]byte) error{
		"Tx.Get":          func(k []byte) error { _, err := tx.Get(k); return err },
		"Tx.GetVersioned": func(k []byte) error { _, _, err := tx.GetVersioned(k); return err },
		"Tx.GetForShare":  func(k []byte) error { _, err := tx.GetForShare(k); return err },
		"Tx.GetForUpdate": func(k []byte) error { _, err := tx.GetForUpdate(k); return err },
		"Tx.Put":          func(k []byte) error { return tx.Put(k, []byte("v")) },
		"Tx.PutIfVersion": func(k []byte) error { return tx.PutIfVersion(k, []byte("v"), 0) },
		"Tx.Delete":       func(k []byte) error { return tx.Delete(k) },
		"DB.Get":          func(k []byte) error { _, err := db.Get(bg, k); return err },
		"DB.Put":          func(k []byte) error { return db.Put(bg, k, []byte("v")) },
		"DB.Delete":       func(k []byte) error { return db.Delete(bg, k) },
		"DB.CompareAndSwap": func(k []byte) error {
			_, err := db.CompareAndSwap(bg, k, nil, []byte("v"))
			return err
		},
		"DB.Increment": func(k []byte) error { _, err := db.Increment(bg, k, 1); return err },
	}
}

func TestInvalidKeys(t *testing.T) {
	db := openMem(t, &txkv.Options{MaxKeySize: 16})
	tx := mustBegin(t, db, nil)
	defer func() { _ = tx.Rollback() }()
	bad := map[string][]byte{
		"nil":      nil,
		"empty":    {},
		"oversize": bytes.Repeat([]byte("k"), 17),
	}
	for opName, op := range keyOps(db, tx) {
		for keyName, key := range bad {
			if err := op(key); !errors.Is(err, txkv.ErrInvalidKey) {
				t.Errorf("%s(%s key) = %v, want ErrInvalidKey", opName, keyName, err)
			}
		}
	}
	// A key of exactly MaxKeySize is fine.
	maxKey := bytes.Repeat([]byte("k"), 16)
	if err := db.Put(bg, maxKey, []byte("v")); err != nil {
		t.Errorf("DB.Put(key of MaxKeySize) = %v", err)
	}
	// The transaction survived all of it.
	if err := tx.Put([]byte("ok"), []byte("v")); err != nil {
		t.Fatalf("Put after invalid keys: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit after invalid keys: %v", err)
	}
}

func TestInvalidKeyDefaultLimit(t *testing.T) {
	db := openMem(t, nil)
	err := db.Put(bg, bytes.Repeat([]byte("k"), 32<<10+1), []byte("v"))
	if !errors.Is(err, txkv.ErrInvalidKey) || !strings.HasPrefix(err.Error(), "txkv: ") {
		t.Fatalf("Put with a 32 KiB+1 key: %v, want ErrInvalidKey prefixed txkv:", err)
	}
}

func TestValueTooLarge(t *testing.T) {
	db := openMem(t, &txkv.Options{MaxValueSize: 100})
	tx := mustBegin(t, db, nil)
	defer func() { _ = tx.Rollback() }()
	big := make([]byte, 101)
	for name, op := range map[string]func() error{
		"Tx.Put":          func() error { return tx.Put([]byte("k"), big) },
		"Tx.PutIfVersion": func() error { return tx.PutIfVersion([]byte("k"), big, 0) },
		"DB.Put":          func() error { return db.Put(bg, []byte("k"), big) },
		"DB.CompareAndSwap": func() error {
			_, err := db.CompareAndSwap(bg, []byte("k"), nil, big)
			return err
		},
	} {
		if err := op(); !errors.Is(err, txkv.ErrValueTooLarge) {
			t.Errorf("%s(101-byte value, MaxValueSize 100) = %v, want ErrValueTooLarge", name, err)
		}
	}
	if err := tx.Put([]byte("k"), make([]byte, 100)); err != nil {
		t.Fatalf("Put of exactly MaxValueSize: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestValueTooLargeDefaultLimit(t *testing.T) {
	db := openMem(t, nil)
	if err := db.Put(bg, []byte("k"), make([]byte, 16<<20+1)); !errors.Is(err, txkv.ErrValueTooLarge) {
		t.Fatalf("Put of 16 MiB+1: %v, want ErrValueTooLarge", err)
	}
	wantAbsent(t, db, "k")
}

// txOps are every Tx method, as func() error.
func txOps(tx *txkv.Tx) map[string]func() error {
	k, v := []byte("k"), []byte("v")
	return map[string]func() error{
		"Get":           func() error { _, err := tx.Get(k); return err },
		"GetVersioned":  func() error { _, _, err := tx.GetVersioned(k); return err },
		"GetForShare":   func() error { _, err := tx.GetForShare(k); return err },
		"GetForUpdate":  func() error { _, err := tx.GetForUpdate(k); return err },
		"Put":           func() error { return tx.Put(k, v) },
		"PutIfVersion":  func() error { return tx.PutIfVersion(k, v, 0) },
		"Delete":        func() error { return tx.Delete(k) },
		"Scan":          func() error { return tx.Scan(nil, nil, func(_, _ []byte) error { return nil }) },
		"ScanForUpdate": func() error { _, err := tx.ScanForUpdate(nil, nil, 0); return err },
		"LockRange":     func() error { return tx.LockRange(nil, nil, txkv.Shared) },
		"LockKeys":      func() error { return tx.LockKeys(txkv.Exclusive, k) },
		"Commit":        tx.Commit,
	}
}

func TestUseAfterCommitOrRollback(t *testing.T) {
	for _, end := range []string{"Commit", "Rollback"} {
		for _, m := range allModes {
			t.Run(end+"/"+m.Name, func(t *testing.T) {
				db := openMem(t, nil)
				for name := range txOps(nil) { // the names; each runs on a fresh tx
					tx := mustBegin(t, db, m.TxOptions())
					if err := tx.Put([]byte("w"), []byte("1")); err != nil {
						t.Fatal(err)
					}
					var err error
					if end == "Commit" {
						err = tx.Commit()
					} else {
						err = tx.Rollback()
					}
					if err != nil {
						t.Fatalf("%s: %v", end, err)
					}
					if err := txOps(tx)[name](); !errors.Is(err, txkv.ErrTxDone) {
						t.Errorf("%s after %s = %v, want ErrTxDone", name, end, err)
					}
					if err := tx.Rollback(); !errors.Is(err, txkv.ErrTxDone) {
						t.Errorf("Rollback after %s and %s = %v, want ErrTxDone", end, name, err)
					}
				}
			})
		}
	}
}

func TestRollbackAfterCommitIsErrTxDone(t *testing.T) {
	db := openMem(t, nil)
	tx := mustBegin(t, db, nil)
	if err := tx.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); !errors.Is(err, txkv.ErrTxDone) {
		t.Fatalf("Rollback after Commit = %v, want ErrTxDone", err)
	}
	// and the commit stands
	wantValue(t, db, "k", "v")
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "v")
	check := func(t *testing.T, tx *txkv.Tx) {
		t.Helper()
		for name, op := range map[string]func() error{
			"Put":           func() error { return tx.Put([]byte("k"), []byte("x")) },
			"PutIfVersion":  func() error { return tx.PutIfVersion([]byte("k"), []byte("x"), 0) },
			"Delete":        func() error { return tx.Delete([]byte("k")) },
			"GetForShare":   func() error { _, err := tx.GetForShare([]byte("k")); return err },
			"GetForUpdate":  func() error { _, err := tx.GetForUpdate([]byte("k")); return err },
			"ScanForUpdate": func() error { _, err := tx.ScanForUpdate(nil, nil, 0); return err },
			"LockRange":     func() error { return tx.LockRange(nil, nil, txkv.Exclusive) },
			"LockKeys":      func() error { return tx.LockKeys(txkv.Exclusive, []byte("k")) },
		} {
			if err := op(); !errors.Is(err, txkv.ErrReadOnly) {
				t.Errorf("%s in a read-only tx = %v, want ErrReadOnly", name, err)
			}
		}
		// Reads still work after the refusals.
		if v, err := tx.Get([]byte("k")); err != nil || string(v) != "v" {
			t.Errorf("Get in a read-only tx = %q, %v", v, err)
		}
	}
	t.Run("Begin", func(t *testing.T) {
		for _, m := range allModes {
			opts := m.TxOptions()
			opts.ReadOnly = true
			tx := mustBegin(t, db, opts)
			check(t, tx)
			if err := tx.Commit(); err != nil {
				t.Fatalf("%s: Commit of a read-only tx: %v", m.Name, err)
			}
		}
	})
	t.Run("View", func(t *testing.T) {
		if err := db.View(bg, func(tx *txkv.Tx) error { check(t, tx); return nil }); err != nil {
			t.Fatal(err)
		}
	})
	wantValue(t, db, "k", "v")
}

func TestManagedTxRefusesCommitAndRollback(t *testing.T) {
	db := openMem(t, nil)
	run := func(name string, call func(fn func(tx *txkv.Tx) error) error) {
		var commitErr, rollbackErr error
		err := call(func(tx *txkv.Tx) error {
			if name == "Update" {
				if err := tx.Put([]byte("k"), []byte(name)); err != nil {
					return err
				}
			}
			commitErr = tx.Commit()
			rollbackErr = tx.Rollback()
			return nil
		})
		if !errors.Is(commitErr, txkv.ErrTxManaged) || !errors.Is(rollbackErr, txkv.ErrTxManaged) {
			t.Errorf("%s: Commit inside fn = %v, Rollback = %v; want ErrTxManaged", name, commitErr, rollbackErr)
		}
		if err != nil {
			t.Errorf("%s: %v (the managed transaction must still commit)", name, err)
		}
	}
	run("Update", func(fn func(*txkv.Tx) error) error { return db.Update(bg, nil, fn) })
	run("View", func(fn func(*txkv.Tx) error) error { return db.View(bg, fn) })
	wantValue(t, db, "k", "Update")
}

func TestNilFunctions(t *testing.T) {
	db := openMem(t, nil)
	if err := db.Update(bg, nil, nil); err == nil {
		t.Error("Update(nil fn) succeeded")
	}
	if err := db.View(bg, nil); err == nil {
		t.Error("View(nil fn) succeeded")
	}
}

// Everything after Close returns ErrClosed; the second Close too.
func TestClosedDB(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			var db *txkv.DB
			if file {
				db, _ = openFile(t, nil)
			} else {
				db = openMem(t, nil)
			}
			mustPut(t, db, "k", "v")
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			k, v := []byte("k"), []byte("v")
			fn := func(*txkv.Tx) error { return nil }
			for name, op := range map[string]func() error{
				"Begin":          func() error { _, err := db.Begin(bg, nil); return err },
				"Update":         func() error { return db.Update(bg, nil, fn) },
				"View":           func() error { return db.View(bg, fn) },
				"Get":            func() error { _, err := db.Get(bg, k); return err },
				"Put":            func() error { return db.Put(bg, k, v) },
				"Delete":         func() error { return db.Delete(bg, k) },
				"CompareAndSwap": func() error { _, err := db.CompareAndSwap(bg, k, v, nil); return err },
				"Increment":      func() error { _, err := db.Increment(bg, []byte("n"), 1); return err },
				"Close":          db.Close,
			} {
				if err := op(); !errors.Is(err, txkv.ErrClosed) {
					t.Errorf("%s after Close = %v, want ErrClosed", name, err)
				}
			}
			// Introspection keeps working on a closed DB.
			_ = db.Stats()
			_ = db.Locks()
		})
	}
}

// Checkpoint is a write to the file; after Close it must say ErrClosed
// rather than pretend it ran.
func TestCheckpointAfterClose(t *testing.T) {
	db, _ := openFile(t, nil)
	mustPut(t, db, "k", "v")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(); !errors.Is(err, txkv.ErrClosed) {
		t.Fatalf("Checkpoint after Close = %v, want ErrClosed", err)
	}
}

// Close rolls back a transaction still open; its next call returns
// ErrClosed, and its writes are gone.
func TestCloseDuringOpenTransaction(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db, path := openFile(t, &txkv.Options{Sync: txkv.SyncNone})
			mustPut(t, db, "k", "before")
			tx := mustBegin(t, db, m.TxOptions())
			if err := tx.Put([]byte("k"), []byte("uncommitted")); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close with an open transaction: %v", err)
			}
			if _, err := tx.Get([]byte("k")); !errors.Is(err, txkv.ErrClosed) {
				t.Fatalf("Get after Close = %v, want ErrClosed", err)
			}
			if err := tx.Commit(); !errors.Is(err, txkv.ErrClosed) && !errors.Is(err, txkv.ErrTxDone) {
				t.Fatalf("Commit after Close = %v, want ErrClosed (or ErrTxDone)", err)
			}
			db = openAt(t, path, nil)
			defer closeQuietly(t, db)
			wantValue(t, db, "k", "before")
		})
	}
}

// Close ends a lock wait: a transaction blocked on another's lock gets
// ErrClosed instead of waiting out its timeout.
func TestCloseEndsLockWait(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever}) // wait forever
	holder := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	if err := holder.Put([]byte("k"), []byte("h")); err != nil {
		t.Fatal(err)
	}
	waiter := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	errc := make(chan error, 1)
	go func() { _, err := waiter.GetForUpdate([]byte("k")); errc <- err }()
	waitFor(t, "the waiter to queue", func() bool { return isWaiting(db, waiter.ID()) })
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	// Close rolls back the holder and the waiter in some order: if the
	// holder goes first, the waiter may be granted the lock before its own
	// rollback, and its in-flight call completes (the key is absent); if
	// not, the wait ends with ErrClosed. Either way it must end.
	if err := recv(t, errc, "the lock wait to end"); !errors.Is(err, txkv.ErrClosed) && !errors.Is(err, txkv.ErrNotFound) {
		t.Fatalf("lock wait ended by Close with %v, want ErrClosed", err)
	}
	if err := recv(t, closed, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, tx := range map[string]*txkv.Tx{"holder": holder, "waiter": waiter} {
		if _, err := tx.Get([]byte("k")); !errors.Is(err, txkv.ErrClosed) {
			t.Fatalf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

func TestInvalidOptions(t *testing.T) {
	cases := map[string]*txkv.Options{
		"strategy 99":           {Strategy: 99},
		"strategy -1":           {Strategy: -1},
		"isolation 7":           {Isolation: 7},
		"AdaptiveThreshold -2":  {AdaptiveThreshold: -2},
		"DeadlockDetection 99":  {DeadlockDetection: 99},
		"DeadlockInterval -1":   {DeadlockInterval: -1},
		"Sync 99":               {Sync: 99},
		"CheckpointBytes -1":    {CheckpointBytes: -1},
		"MemtableBytes -1":      {MemtableBytes: -1},
		"MaxKeySize 32 KiB + 1": {MaxKeySize: 32<<10 + 1},
		"MaxKeySize -1":         {MaxKeySize: -1},
		"MaxValueSize -1":       {MaxValueSize: -1},
		"Retry.MaxAttempts -1":  {Retry: &txkv.RetryPolicy{MaxAttempts: -1}},
		"Retry.BaseDelay -1":    {Retry: &txkv.RetryPolicy{BaseDelay: -1}},
	}
	for name, o := range cases {
		for _, path := range []string{"", t.TempDir() + "/db"} {
			db, err := txkv.Open(path, o)
			if !errors.Is(err, txkv.ErrInvalidOption) {
				if db != nil {
					_ = db.Close()
				}
				t.Errorf("Open(%q, %s) = %v, want ErrInvalidOption", path, name, err)
			}
		}
	}
	// Valid corner cases: negative LockTimeout waits forever; nil and
	// DefaultOptions are the defaults.
	for name, o := range map[string]*txkv.Options{
		"nil":            nil,
		"DefaultOptions": txkv.DefaultOptions(),
		"LockTimeout -1": {LockTimeout: txkv.Forever},
		"AdaptiveNever":  {AdaptiveThreshold: txkv.AdaptiveNever},
		"periodic":       {DeadlockDetection: txkv.DeadlockPeriodic, DeadlockInterval: 1 << 20},
	} {
		db, err := txkv.Open("", o)
		if err != nil {
			t.Errorf("Open(%s) = %v", name, err)
			continue
		}
		if err := db.Close(); err != nil {
			t.Errorf("Close(%s) = %v", name, err)
		}
	}
}

func TestInvalidTxOptions(t *testing.T) {
	db := openMem(t, nil)
	for name, o := range map[string]*txkv.TxOptions{
		"strategy 99": {Strategy: 99},
		"isolation 9": {Isolation: 9},
		"strategy -3": {Strategy: -3},
	} {
		if tx, err := db.Begin(bg, o); !errors.Is(err, txkv.ErrInvalidOption) {
			if tx != nil {
				_ = tx.Rollback()
			}
			t.Errorf("Begin(%s) = %v, want ErrInvalidOption", name, err)
		}
		if err := db.Update(bg, o, func(*txkv.Tx) error { return nil }); !errors.Is(err, txkv.ErrInvalidOption) {
			t.Errorf("Update(%s) = %v, want ErrInvalidOption", name, err)
		}
	}
	// A retry policy given per transaction is validated like the DB's.
	calls := 0
	err := db.Update(bg, &txkv.TxOptions{Retry: &txkv.RetryPolicy{MaxAttempts: -1}}, func(*txkv.Tx) error {
		calls++
		return nil
	})
	if !errors.Is(err, txkv.ErrInvalidOption) {
		t.Errorf("Update with Retry.MaxAttempts -1 = %v after %d calls, want ErrInvalidOption", err, calls)
	}
	if l := db.Locks(); len(l) != 0 {
		t.Fatalf("locks left: %+v", l)
	}
}

func TestBeginWithCancelledContext(t *testing.T) {
	db := openMem(t, nil)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := db.Begin(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Begin(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := db.Update(ctx, nil, func(*txkv.Tx) error { t.Error("fn ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Update(cancelled ctx) = %v, want context.Canceled", err)
	}
	if err := db.View(ctx, func(*txkv.Tx) error { t.Error("fn ran"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("View(cancelled ctx) = %v, want context.Canceled", err)
	}
	for name, op := range map[string]func() error{
		"Get":       func() error { _, err := db.Get(ctx, []byte("k")); return err },
		"Put":       func() error { return db.Put(ctx, []byte("k"), []byte("v")) },
		"Increment": func() error { _, err := db.Increment(ctx, []byte("n"), 1); return err },
	} {
		if err := op(); !errors.Is(err, context.Canceled) {
			t.Errorf("DB.%s(cancelled ctx) = %v, want context.Canceled", name, err)
		}
	}
	wantAbsent(t, db, "k")
}

// A Tx is bound to Begin's ctx (database/sql's BeginTx): cancelling it
// rolls the transaction back; every later call returns the ctx error.
func TestCancelDuringTransaction(t *testing.T) {
	for _, m := range allModes {
		t.Run(m.Name, func(t *testing.T) {
			db := openMem(t, nil)
			ctx, cancel := context.WithCancel(bg)
			tx, err := db.Begin(ctx, m.TxOptions())
			if err != nil {
				t.Fatal(err)
			}
			if err := tx.Put([]byte("k"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			cancel()
			if _, err := tx.Get([]byte("k")); !errors.Is(err, context.Canceled) {
				t.Fatalf("Get after cancel = %v, want context.Canceled", err)
			}
			if err := tx.Commit(); !errors.Is(err, context.Canceled) {
				t.Fatalf("Commit after cancel = %v, want context.Canceled", err)
			}
			wantAbsent(t, db, "k")
			// The rollback released the locks (pessimistic held X on k).
			waitFor(t, "the cancelled tx's locks to go", func() bool { return len(db.Locks()) == 0 })
			mustPut(t, db, "k", "after")
		})
	}
}

// Cancelling the ctx ends a lock wait with the ctx's error, leaves no trace
// in the lock table, and the holder is unaffected.
func TestCancelEndsLockWait(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever})
	holder := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	defer func() { _ = holder.Rollback() }()
	if err := holder.Put([]byte("k"), []byte("h")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	waiter, err := db.Begin(ctx, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := waiter.GetForUpdate([]byte("k")); errc <- err }()
	waitFor(t, "the waiter to queue", func() bool { return isWaiting(db, waiter.ID()) })
	cancel()
	if err := recv(t, errc, "the cancelled wait"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled lock wait = %v, want context.Canceled", err)
	}
	for _, l := range db.Locks() {
		if l.TxID == waiter.ID() {
			t.Fatalf("the cancelled waiter left %+v in the lock table", l)
		}
	}
	// The transaction was rolled back by the cancel; its next call says why.
	if _, err := waiter.Get([]byte("other")); !errors.Is(err, context.Canceled) {
		t.Errorf("waiter's next call after a cancelled wait = %v, want context.Canceled", err)
	}
	if err := holder.Commit(); err != nil {
		t.Fatalf("holder Commit: %v", err)
	}
	wantValue(t, db, "k", "h")
}

func TestErrorMessagesArePrefixed(t *testing.T) {
	for _, err := range []error{
		txkv.ErrNotFound, txkv.ErrConflict, txkv.ErrVersionMismatch, txkv.ErrTxDone,
		txkv.ErrReadOnly, txkv.ErrInvalidKey, txkv.ErrValueTooLarge, txkv.ErrTxManaged,
		txkv.ErrInvalidOption, txkv.ErrNotCounter, txkv.ErrDeadlock, txkv.ErrLockTimeout,
		txkv.ErrLockNotAvailable, txkv.ErrClosed, txkv.ErrCorrupt, txkv.ErrLogFailed, txkv.ErrCompacted,
		txkv.ErrInUse, txkv.ErrInvalidRecord, txkv.ErrSnapshotTooOld,
	} {
		if !strings.HasPrefix(err.Error(), "txkv: ") {
			t.Errorf("%q lacks the txkv: prefix", err)
		}
	}
	if !txkv.IsRetryable(txkv.ErrConflict) || !txkv.IsRetryable(&txkv.ConflictError{}) ||
		!txkv.IsRetryable(txkv.ErrDeadlock) || txkv.IsRetryable(txkv.ErrLockTimeout) ||
		txkv.IsRetryable(txkv.ErrNotFound) || txkv.IsRetryable(nil) {
		t.Error("IsRetryable: want true exactly for conflicts and deadlocks")
	}
}

// Close racing Begin: each Begin either fails with ErrClosed or returns a
// transaction that Close rolls back. Nothing may panic, race or hang. (Under
// -race this catches Close cancelling a transaction that Begin has
// registered but not yet bound to its context.) A panic in the engine's
// goroutines would kill the whole test binary, so the loop runs in a child
// process and a crash there fails only this test.
func TestBeginRacesClose(t *testing.T) {
	runChildTest(t, "TestBeginRacesCloseChild", 3*waitLimit)
}

func TestBeginRacesCloseChild(t *testing.T) {
	if !isChild("TestBeginRacesCloseChild") {
		t.Skip("run by TestBeginRacesClose as a child process")
	}
	for range 200 {
		db, err := txkv.Open("", nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					tx, err := db.Begin(bg, nil)
					if err != nil {
						if !errors.Is(err, txkv.ErrClosed) {
							t.Errorf("Begin racing Close: %v", err)
						}
						return
					}
					if err := tx.Put([]byte{byte('a' + g)}, []byte("v")); err != nil && !errors.Is(err, txkv.ErrClosed) {
						t.Errorf("Put racing Close: %v", err)
					}
					_ = tx.Rollback()
				}
			}()
		}
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		if err := recv(t, closed, "Close racing Begin"); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
}

// A context cancelled while Begin runs: the transaction is rolled back
// (its calls return context.Canceled) or Begin fails; nothing may panic,
// race, or leave the transaction registered (Close would then hang). In a
// child process, as TestBeginRacesClose.
func TestBeginRacesCancel(t *testing.T) {
	runChildTest(t, "TestBeginRacesCancelChild", 3*waitLimit)
}

func TestBeginRacesCancelChild(t *testing.T) {
	if !isChild("TestBeginRacesCancelChild") {
		t.Skip("run by TestBeginRacesCancel as a child process")
	}
	db := openMem(t, nil)
	for range 2000 {
		ctx, cancel := context.WithCancel(bg)
		go cancel()
		tx, err := db.Begin(ctx, nil)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Begin with a ctx being cancelled: %v", err)
			}
			continue
		}
		if _, err := tx.Get([]byte("k")); err != nil && !errors.Is(err, txkv.ErrNotFound) && !errors.Is(err, context.Canceled) {
			t.Fatalf("Get: %v", err)
		}
		_ = tx.Rollback()
	}
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	if err := recv(t, closed, "Close after cancelled Begins"); err != nil {
		t.Fatal(err)
	}
}
