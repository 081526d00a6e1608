package txn

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/txkv/txkv/lockmgr"
)

func openAdaptive(t *testing.T, threshold int) *DB {
	t.Helper()
	c := defaultConfig(t)
	c.Strategy = Adaptive
	c.AdaptiveThreshold = threshold
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// heldBy returns the modes tx holds, by key.
func heldBy(db *DB, tx *Tx) map[string]lockmgr.Mode {
	held := map[string]lockmgr.Mode{}
	for _, l := range db.Locks() {
		if l.TxID == tx.ID() && l.Granted {
			held[string(l.Key)] = l.Mode
		}
	}
	return held
}

func readAndWrite(t *testing.T, tx *Tx, key string) {
	t.Helper()
	if _, err := tx.Get([]byte(key)); err != nil && !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := tx.Put([]byte(key), []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// The MOCC test oracle: AdaptiveAlways locks every read — exactly Pessimistic.
func TestAdaptiveAlwaysIsPessimistic(t *testing.T) {
	db := openAdaptive(t, AdaptiveAlways)
	tx, err := db.Begin(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if tx.Strategy() != Pessimistic {
		t.Fatalf("strategy %v, want pessimistic", tx.Strategy())
	}
	if _, err := tx.Get([]byte("a")); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := tx.Put([]byte("b"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	held := heldBy(db, tx)
	if held["a"] != lockmgr.Shared || held["b"] != lockmgr.Exclusive || len(held) != 2 {
		t.Fatalf("held %v, want a:S b:X", held)
	}
}

// The other end: AdaptiveNever never locks, even a key that is on fire.
func TestAdaptiveNeverIsOptimistic(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	for range 100 {
		db.temp.Heat([]byte("a"), true)
	}
	tx, err := db.Begin(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if tx.Strategy() != Optimistic {
		t.Fatalf("strategy %v, want optimistic", tx.Strategy())
	}
	readAndWrite(t, tx, "a")
	if held := heldBy(db, tx); len(held) != 0 {
		t.Fatalf("held %v, want no locks", held)
	}
}

// In between: cold keys stay optimistic, hot keys are locked at read time.
func TestAdaptiveLocksOnlyHotKeys(t *testing.T) {
	db := openAdaptive(t, 3)
	for range 3 {
		db.temp.Heat([]byte("hot"), false)
	}
	tx, err := db.Begin(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if tx.Strategy() != Adaptive {
		t.Fatalf("strategy %v", tx.Strategy())
	}
	if _, err := tx.Get([]byte("cold")); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := tx.Get([]byte("hot")); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	held := heldBy(db, tx)
	if len(held) != 1 || held["hot"] != lockmgr.Shared {
		t.Fatalf("held %v, want only hot:S", held)
	}
}

// A conflict heats the key; the retry locks it — exclusively, since the
// failed attempt wrote it (no S→X upgrade deadlock on the retry).
func TestAdaptiveRetryLocksConflictedKeyExclusive(t *testing.T) {
	db := openAdaptive(t, 1)
	ctx := context.Background()
	attempts := 0
	err := db.Update(ctx, nil, func(tx *Tx) error {
		attempts++
		readAndWrite(t, tx, "k")
		if attempts == 1 {
			// Someone else commits k meanwhile: attempt 1 fails validation.
			return db.Put(ctx, []byte("k"), []byte("other"))
		}
		if held := heldBy(db, tx); held["k"] != lockmgr.Exclusive {
			t.Errorf("retry holds %v, want k:X taken at read time", held)
		}
		return nil
	})
	if err != nil || attempts != 2 {
		t.Fatalf("err %v after %d attempts", err, attempts)
	}
	if got := db.temp.Of([]byte("k")); got < 1 {
		t.Fatalf("temperature of k = %d after a conflict", got)
	}
}

// The guide's thresholds advise: with the windowed conflict rate over 20%
// Pessimistic is probed, and if it wastes less, new Adaptive work runs
// pessimistically; at 10% it is not tried.
func TestStatsAbortReasonsAndRatio(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	ctx := context.Background()
	holder, _ := db.Begin(ctx, &TxOptions{Strategy: Pessimistic})
	if err := holder.Put([]byte("x"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	tx, _ := db.Begin(ctx, nil)
	if _, err := tx.GetForUpdate([]byte("x"), NoWait()); !errors.Is(err, lockmgr.ErrLockNotAvailable) {
		t.Fatalf("NOWAIT: %v", err)
	}
	if _, err := tx.Get([]byte("y")); !errors.Is(err, ErrNotFound) { // the refused request read nothing; this reads one key
		t.Fatal(err)
	}
	_ = tx.Rollback()
	_ = holder.Rollback()
	s := db.Stats()
	if s.AbortsByReason["nowait"] != 1 || s.AbortsByReason["rollback"] != 1 || s.NotAvailable != 1 {
		t.Fatalf("aborts by reason %v, not available %d", s.AbortsByReason, s.NotAvailable)
	}
	if s.Reads != 1 || s.Writes != 1 || s.ReadWriteRatio != 1 {
		t.Fatalf("reads %d writes %d ratio %v", s.Reads, s.Writes, s.ReadWriteRatio)
	}
}

// Keys whose conflicts were read-modify-writes are locked exclusively at
// read time: two hot readers must not both hold S and then upgrade.
func TestAdaptiveLocksRMWHotKeysExclusive(t *testing.T) {
	db := openAdaptive(t, 2)
	db.temp.Heat([]byte("rmw"), true)
	db.temp.Heat([]byte("rmw"), true)
	db.temp.Heat([]byte("ro"), false)
	db.temp.Heat([]byte("ro"), false)
	tx, err := db.Begin(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	for _, k := range []string{"rmw", "ro"} {
		if _, err := tx.Get([]byte(k)); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	held := heldBy(db, tx)
	if held["rmw"] != lockmgr.Exclusive || held["ro"] != lockmgr.Shared {
		t.Fatalf("held %v, want rmw:X ro:S", held)
	}
}

// A SKIP LOCKED worker that skipped a row and then rolls back for its own
// reasons is a plain rollback, not a NOWAIT failure; a version mismatch is
// counted for the guide's VersionMismatchMonitor.
func TestStatsSkipLockedAndVersionMismatch(t *testing.T) {
	db := openAdaptive(t, AdaptiveNever)
	ctx := context.Background()
	for _, k := range []string{"job/1", "job/2"} {
		if err := db.Put(ctx, []byte(k), []byte("todo")); err != nil {
			t.Fatal(err)
		}
	}
	holder, _ := db.Begin(ctx, nil)
	if _, err := holder.ScanForUpdate([]byte("job/"), []byte("job0"), 1, SkipLocked()); err != nil {
		t.Fatal(err)
	}
	worker, _ := db.Begin(ctx, nil)
	got, err := worker.ScanForUpdate([]byte("job/"), []byte("job0"), 1, SkipLocked())
	if err != nil || len(got) != 1 || string(got[0].Key) != "job/2" {
		t.Fatalf("worker claimed %v, %v; want job/2", got, err)
	}
	if err := worker.PutIfVersion([]byte("job/2"), []byte("done"), 12345); !errors.Is(err, ErrVersionMismatch) {
		t.Fatalf("PutIfVersion with a wrong version = %v", err)
	}
	_ = worker.Rollback()
	_ = holder.Rollback()
	s := db.Stats()
	if s.AbortsByReason["nowait"] != 0 || s.AbortsByReason["rollback"] != 2 {
		t.Fatalf("aborts by reason %v: a skip is not a failure", s.AbortsByReason)
	}
	if s.VersionMismatches != 1 || s.NotAvailable != 1 {
		t.Fatalf("version mismatches %d, not available %d", s.VersionMismatches, s.NotAvailable)
	}
}

func TestDeadlockVictimRequester(t *testing.T) {
	c := defaultConfig(t)
	c.DeadlockVictim = 1 // deadlock.Requester
	c.LockTimeout = Forever
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	older, _ := db.Begin(ctx, &TxOptions{Strategy: Pessimistic})
	younger, _ := db.Begin(ctx, &TxOptions{Strategy: Pessimistic})
	if err := older.Put([]byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	if err := younger.Put([]byte("b"), nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- younger.Put([]byte("a"), nil) }() // younger waits for older
	for {                                                 // poll the lock table, never sleep
		if _, waiting := db.locks.WaitingOn(younger.ID()); waiting {
			break
		}
		runtime.Gosched()
	}
	// older closes the cycle: under Requester it, not the younger, is the victim.
	if err := older.Put([]byte("b"), nil); !errors.Is(err, lockmgr.ErrDeadlock) {
		t.Fatalf("requester's Put = %v, want ErrDeadlock", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("younger's wait = %v, want granted", err)
	}
	_ = younger.Rollback()
}

// TestWindowClockTicks: the window's coarse clock advances on its own (once
// a second) and stops with the window.

// HotKeys shows each hot key's temperature and whether Adaptive now locks
// it at read time: the switch from optimistic to locked as it heats up.
func TestHotKeysShowAdaptiveSwitch(t *testing.T) {
	db := openAdaptive(t, 2)
	k := []byte("k")
	db.hot.note(k, nil, false, hotConflict)
	hs := db.HotKeys(1)
	if len(hs) != 1 || hs[0].Temperature != 0 || hs[0].AdaptiveLocks {
		t.Fatalf("cold key: %+v", hs)
	}
	db.temp.Heat(k, true)
	db.temp.Heat(k, true)
	hs = db.HotKeys(1)
	if hs[0].Temperature != 2 || !hs[0].AdaptiveLocks {
		t.Fatalf("key at the threshold: %+v, want temperature 2, locked", hs[0])
	}
}
