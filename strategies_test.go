package txkv_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/txkv/txkv"
	"github.com/txkv/txkv/internal/conformance"
)

// Strategies interoperate through one commit protocol (architecture §3): these
// tests put transactions of different strategies on the same keys.

// A read-only transaction never waits: a writer's exclusive lock does not
// block View, which reads the last committed value.
func TestViewDoesNotWaitForLocks(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever})
	mustPut(t, db, "k", "committed")
	writer := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	defer func() { _ = writer.Rollback() }()
	if err := writer.Put([]byte("k"), []byte("uncommitted")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- db.View(bg, func(tx *txkv.Tx) error {
			v, err := tx.Get([]byte("k"))
			if err == nil && string(v) != "committed" {
				err = fmt.Errorf("View read %q", v)
			}
			return err
		})
	}()
	if err := recv(t, done, "View under a writer's X lock"); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get(bg, []byte("k")); err != nil || string(v) != "committed" {
		t.Fatalf("DB.Get under a writer's X lock = %q, %v", v, err)
	}
}

// An optimistic transaction that read a key a pessimistic transaction has
// locked for writing, but not begun to commit, serializes before it.
func TestOptimisticSerializesBeforeUncommittedPessimisticWriter(t *testing.T) {
	for _, iso := range []txkv.Isolation{txkv.Serializable, txkv.Snapshot} {
		t.Run(iso.String(), func(t *testing.T) {
			db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever})
			mustPut(t, db, "k", "0")
			sc := newSched(t, db)
			opt := sc.begin("OPT", &txkv.TxOptions{Strategy: txkv.Optimistic, Isolation: iso})
			pes := sc.begin("PES", &txkv.TxOptions{Strategy: txkv.Pessimistic, Isolation: iso})
			opt.do("read", func(tx *txkv.Tx) error { _, err := tx.Get([]byte("k")); return err })
			pes.do("write", func(tx *txkv.Tx) error { return tx.Put([]byte("k"), []byte("pes")) })
			opt.do("write", func(tx *txkv.Tx) error { return tx.Put([]byte("other"), []byte("opt")) })
			opt.commit()
			pes.commit()
			sc.finish()
			if !pes.committed() {
				t.Fatalf("the pessimistic writer failed: %v", pes.failure())
			}
			// The pessimistic writer holds k but has not begun to commit:
			// its timestamp will follow OPT's, so OPT (which read the old
			// k) serializes first and both commit — the serial order
			// OPT, PES. (A holder already committing does make OPT fail:
			// txn's TestValidationChecksLockBeforeVersion.)
			if !opt.committed() {
				t.Fatalf("optimistic commit before the pessimistic writer's = %v, want success", opt.failure())
			}
			wantValue(t, db, "other", "opt")
			wantValue(t, db, "k", "pes")
		})
	}
}

// A pessimistic writer waits for an optimistic committer's write lock, and
// first-updater-wins under Snapshot: the one that waited, then finds the key
// changed since its snapshot, fails with ErrConflict.
func TestPessimisticSnapshotFirstUpdaterWins(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: txkv.Forever})
	mustPut(t, db, "k", "0")
	sc := newSched(t, db)
	t1 := sc.begin("T1", pessimisticSnapshot.TxOptions())
	t2 := sc.begin("T2", pessimisticSnapshot.TxOptions())
	t1.do("write", func(tx *txkv.Tx) error { return tx.Put([]byte("k"), []byte("t1")) })
	t2.do("write", func(tx *txkv.Tx) error { return tx.Put([]byte("k"), []byte("t2")) })
	if !t2.blockedIn("write") {
		t.Fatal("T2's write of a key T1 holds did not wait")
	}
	t1.commit()
	t2.commit()
	sc.finish()
	var ce *txkv.ConflictError
	if err := t2.err("write"); !errors.As(err, &ce) || string(ce.Key) != "k" {
		t.Fatalf("T2 after T1 committed k = %v, want a *ConflictError on k", err)
	}
	wantValue(t, db, "k", "t1")
}

// A lock timeout fails only the request: the transaction keeps its other
// locks and writes, and can commit (InnoDB's innodb_rollback_on_timeout=OFF).
func TestLockTimeoutLeavesTransactionUsable(t *testing.T) {
	db := openMem(t, &txkv.Options{LockTimeout: 50 * time.Millisecond})
	holder := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	defer func() { _ = holder.Rollback() }()
	if err := holder.Put([]byte("busy"), []byte("h")); err != nil {
		t.Fatal(err)
	}
	tx := mustBegin(t, db, &txkv.TxOptions{Strategy: txkv.Pessimistic})
	if err := tx.Put([]byte("mine"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	before := db.Stats().LockTimeouts
	if err := tx.Put([]byte("busy"), []byte("x")); !errors.Is(err, txkv.ErrLockTimeout) {
		t.Fatalf("Put of a key held by another, 50ms timeout = %v, want ErrLockTimeout", err)
	}
	if s := db.Stats().LockTimeouts; s != before+1 {
		t.Fatalf("Stats().LockTimeouts %d → %d, want +1", before, s)
	}
	if !holds(db, tx.ID(), "mine", txkv.Exclusive) {
		t.Fatalf("after the timeout the tx lost its lock on mine: %+v", db.Locks())
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("Commit after a lock timeout: %v", err)
	}
	wantValue(t, db, "mine", "v")
}

// With a tiny memtable and checkpoint threshold the data spills to the
// file's base: everything stays readable (Get, Scan), before and after a
// reopen, while background checkpoints run.
func TestSmallMemtableSpillsToBase(t *testing.T) {
	opts := &txkv.Options{Sync: txkv.SyncNone, MemtableBytes: 16 << 10, CheckpointBytes: 16 << 10}
	db, path := openFile(t, opts)
	const n, batch = 3000, 100
	val := func(i int) string {
		return fmt.Sprintf("value-%05d-%s", i, "................................................")
	}
	for b := 0; b < n; b += batch {
		err := db.Update(bg, nil, func(tx *txkv.Tx) error {
			for i := b; i < b+batch; i++ {
				if err := tx.Put(fmt.Appendf(nil, "k%05d", i), []byte(val(i))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a background checkpoint", func() bool { return db.Stats().Checkpoints > 0 })
	check := func(db *txkv.DB) {
		t.Helper()
		for i := 0; i < n; i += 97 {
			wantValue(t, db, fmt.Sprintf("k%05d", i), val(i))
		}
		count := 0
		err := db.View(bg, func(tx *txkv.Tx) error {
			return tx.Scan(nil, nil, func(k, v []byte) error {
				if want := fmt.Sprintf("k%05d", count); string(k) != want || string(v) != val(count) {
					return fmt.Errorf("Scan at %d: %s=%s, want %s", count, k, v, want)
				}
				count++
				return nil
			})
		})
		if err != nil || count != n {
			t.Fatalf("Scan: %d keys, %v; want %d", count, err, n)
		}
	}
	check(db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openAt(t, path, opts)
	defer closeQuietly(t, db)
	check(db)
}

// Atomic visibility under load: while transfers of every strategy run,
// every reader — View snapshots, and read-write transactions of every
// strategy scanning all accounts — sees the money total conserved, whether
// the state is in the memtable or being checkpointed into the file under it.
func TestReadersSeeConsistentTotalsDuringTransfers(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file-checkpointing"}[file], func(t *testing.T) {
			var db *txkv.DB
			if file {
				db, _ = openFile(t, &txkv.Options{Sync: txkv.SyncNone, CheckpointBytes: 1, MemtableBytes: 1})
			} else {
				db = openMem(t, nil)
			}
			conformance.BankOn(t, db, local, 8, 150)
			if file && db.Stats().Checkpoints == 0 {
				t.Fatal("no checkpoint ran: the test did not exercise reads across checkpoints")
			}
		})
	}
}

// Hybrid remembers how its first attempts fare: while every optimistic
// first attempt meets a conflicting commit, new Hybrid work soon starts
// pessimistic — the fallback without the failed attempt before it — and
// once conflicts stop, the occasional optimistic probe brings optimistic
// first attempts back. Driven by outcomes, not clocks.
func TestHybridStartsPessimisticWhileFirstAttemptsFail(t *testing.T) {
	db := openMem(t, &txkv.Options{Strategy: txkv.Hybrid})
	update := func(conflict bool) (first txkv.Strategy) {
		t.Helper()
		attempt := 0
		err := db.Update(bg, nil, func(tx *txkv.Tx) error {
			if attempt++; attempt == 1 {
				first = tx.Strategy()
			}
			if _, err := tx.Get([]byte("k")); err != nil && !errors.Is(err, txkv.ErrNotFound) {
				return err
			}
			if conflict && tx.Strategy() == txkv.Hybrid { // optimistic: another commit lands meanwhile
				if err := db.Put(bg, []byte("k"), []byte("other")); err != nil {
					return err
				}
			}
			return tx.Put([]byte("k"), []byte("mine"))
		})
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	for n := 0; update(true) != txkv.Pessimistic; n++ {
		if n == 40 {
			t.Fatal("after 40 failed optimistic first attempts Hybrid still starts optimistic")
		}
	}
	// Back to optimistic: 128 optimistic starts in a row, more than a probe
	// burst has.
	for n, inARow := 0, 0; inARow < 128; n++ {
		if n == 5000 {
			t.Fatal("after 5000 Updates without a conflict Hybrid still starts pessimistic")
		}
		if inARow++; update(false) != txkv.Hybrid {
			inARow = 0
		}
	}
}
