package txn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv/lockmgr"
)

// White-box tests of the engine's small pieces: validation order, error
// types, option resolution. The behaviour as users see it is tested from
// the root package (package txkv_test).

func openEngine(t *testing.T) *DB {
	t.Helper()
	c := &Options{}
	c.EnsureDefaults()
	c.LockTimeout = Forever
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := Open("", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// Validation must check a read key's lock before its version. A committer
// holds its X lock from before its timestamp until after it installed its
// versions; checking the version first and the lock second lets it install
// and release between the two checks, so both pass and a conflict is
// missed (the root package's TestWriteSkewConcurrentSerializable shows the
// write skew it lets through). When a key is both changed and locked by a
// committing transaction, the
// reason reported shows which check ran first: it must be the lock's.
func TestValidationChecksLockBeforeVersion(t *testing.T) {
	for _, c := range []struct {
		name       string
		read       func(tx *Tx) error
		wantReason string
	}{
		{"point", func(tx *Tx) error { _, err := tx.Get([]byte("k")); return err }, ReasonReadLocked},
		{"range", func(tx *Tx) error {
			return tx.Scan([]byte("a"), []byte("z"), func(_, _ []byte) error { return nil })
		}, ReasonRangeLocked},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := openEngine(t)
			ctx := context.Background()
			if err := db.Put(ctx, []byte("k"), []byte("0")); err != nil {
				t.Fatal(err)
			}
			reader, err := db.Begin(ctx, &TxOptions{Strategy: Optimistic, Isolation: Serializable})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = reader.Rollback() }()
			if err := c.read(reader); err != nil {
				t.Fatal(err)
			}
			// k changes after the reader's snapshot ...
			if err := db.Put(ctx, []byte("k"), []byte("1")); err != nil {
				t.Fatal(err)
			}
			// ... and another writer now holds it exclusively.
			locker, err := db.Begin(ctx, &TxOptions{Strategy: Pessimistic})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = locker.Rollback() }()
			if err := locker.Put([]byte("k"), []byte("2")); err != nil {
				t.Fatal(err)
			}
			// ... and is in the middle of committing (past "take a
			// timestamp"): only such holders count (committingSet).
			db.committing.add(locker.ID())
			defer db.committing.remove(locker.ID())
			if err := reader.Put([]byte("out"), []byte("x")); err != nil {
				t.Fatal(err)
			}
			var ce *ConflictError
			if err := reader.Commit(); !errors.As(err, &ce) {
				t.Fatalf("Commit = %v, want a *ConflictError", err)
			}
			if ce.Reason != c.wantReason {
				t.Fatalf("reason %q: the version was checked before the lock (want %q)", ce.Reason, c.wantReason)
			}
		})
	}
}

func TestConflictErrorMessages(t *testing.T) {
	point := &ConflictError{TxID: 7, Key: []byte("k"), Reason: ReasonReadChanged}
	rng := &ConflictError{TxID: 8, Key: []byte("a"), Range: true, Reason: ReasonRangeChanged}
	for _, c := range []struct {
		err  error
		want []string
	}{
		{point, []string{"txkv: ", "tx 7", `"k"`, ReasonReadChanged}},
		{rng, []string{"txkv: ", "tx 8", `["a", ∞)`, ReasonRangeChanged}},
		{&VersionMismatchError{Key: []byte("doc"), Expected: 3, Actual: 5}, []string{"txkv: ", `"doc"`, "5", "3"}},
	} {
		msg := c.err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q lacks %q", msg, w)
			}
		}
	}
	if !errors.Is(point, ErrConflict) || !IsRetryable(point) || errors.Is(point, ErrVersionMismatch) {
		t.Error("ConflictError: want Is(ErrConflict) and retryable")
	}
	if vm := (&VersionMismatchError{}); !errors.Is(vm, ErrVersionMismatch) || IsRetryable(vm) {
		t.Error("VersionMismatchError: want Is(ErrVersionMismatch), not retryable")
	}
	if !IsRetryable(&lockmgr.DeadlockError{}) || IsRetryable(lockmgr.ErrLockTimeout) {
		t.Error("IsRetryable: deadlocks yes, lock timeouts no")
	}
}

func TestStrategyAndIsolationNames(t *testing.T) {
	for s, want := range map[Strategy]string{
		StrategyDefault: "default", Pessimistic: "pessimistic", Optimistic: "optimistic",
		Hybrid: "hybrid", Adaptive: "adaptive", Adaptive + 1: "Strategy(5)", -1: "Strategy(-1)",
	} {
		if got := s.String(); got != want {
			t.Errorf("Strategy(%d).String() = %q, want %q", int(s), got, want)
		}
	}
	for i, want := range map[Isolation]string{
		IsolationDefault: "default", Serializable: "serializable", Snapshot: "snapshot", 9: "Isolation(9)",
	} {
		if got := i.String(); got != want {
			t.Errorf("Isolation(%d).String() = %q, want %q", int(i), got, want)
		}
	}
}

// Lock options: one convention from the API to lockmgr — WaitTimeout(d)
// reaches lockmgr unchanged (Forever or any negative: no timer; 0: do not
// wait); SkipLocked on a single key acts as NoWait, nil options are ignored,
// and the default is the transaction's own timeout. A zero LockTimeout
// option is the only thing translated: it means the DB's.
func TestLockOptionsResolution(t *testing.T) {
	tx := &Tx{timeout: 3 * time.Second}
	if o := tx.lockOptions(nil); o.policy != lockmgr.Block || o.timeout != 3*time.Second {
		t.Errorf("defaults: %+v", o)
	}
	for _, d := range []time.Duration{Forever, 0, time.Millisecond} {
		if o := tx.lockOptions([]LockOption{nil, WaitTimeout(d)}); o.timeout != d || o.policy != lockmgr.Block {
			t.Errorf("WaitTimeout(%v): %+v, want the same bound, Block", d, o)
		}
	}
	if o := tx.lockOptions([]LockOption{WaitTimeout(time.Millisecond), NoWait()}); o.policy != lockmgr.NoWait || o.timeout != time.Millisecond {
		t.Errorf("NoWait+WaitTimeout: %+v", o)
	}
	if p := pointPolicy(tx.lockOptions([]LockOption{SkipLocked()}).policy); p != lockmgr.NoWait {
		t.Errorf("SkipLocked on one key = %v, want NoWait", p)
	}
	db := &DB{cfg: Options{LockTimeout: 2 * time.Second}}
	for in, want := range map[time.Duration]time.Duration{0: 2 * time.Second, time.Second: time.Second, Forever: Forever} {
		if got := db.lockTimeout(in); got != want {
			t.Errorf("lockTimeout(%v) = %v, want %v", in, got, want)
		}
	}
	db.cfg.LockTimeout = Forever
	if got := db.lockTimeout(0); got != Forever {
		t.Errorf("DB default Forever: lockTimeout(0) = %v, want Forever", got)
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	p := RetryPolicy{}.withDefaults()
	if p != DefaultRetryPolicy {
		t.Fatalf("zero policy → %+v, want %+v", p, DefaultRetryPolicy)
	}
	if p := (RetryPolicy{MaxAttempts: 3}).withDefaults(); p.MaxAttempts != 3 || p.BaseDelay != DefaultRetryPolicy.BaseDelay {
		t.Fatalf("partial policy → %+v", p)
	}
	for _, bad := range []RetryPolicy{{MaxAttempts: -1}, {BaseDelay: -1}, {MaxDelay: -1}} {
		if err := bad.validate(); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("%+v: validate = %v", bad, err)
		}
	}
}

// A strict-2PL holder that has not begun to commit is no conflict for an
// optimistic validator: its timestamp will come later, so it serializes
// after the validator (whose read of the old value is then right).
func TestValidationIgnoresHoldersNotCommitting(t *testing.T) {
	db := openEngine(t)
	ctx := context.Background()
	if err := db.Put(ctx, []byte("k"), []byte("0")); err != nil {
		t.Fatal(err)
	}
	reader, err := db.Begin(ctx, &TxOptions{Strategy: Optimistic, Isolation: Serializable})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reader.Get([]byte("k")); err != nil {
		t.Fatal(err)
	}
	locker, err := db.Begin(ctx, &TxOptions{Strategy: Pessimistic})
	if err != nil {
		t.Fatal(err)
	}
	if err := locker.Put([]byte("k"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := reader.Put([]byte("out"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := reader.Commit(); err != nil {
		t.Fatalf("reader Commit = %v, want success: the locker has not begun to commit", err)
	}
	if err := locker.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := db.Get(ctx, []byte("k"))
	if err != nil || string(got) != "2" {
		t.Fatalf("k = %q %v", got, err)
	}
}

// A Serializable transaction that wrote nothing but mixed a snapshot read
// with a locked read of the latest version saw two points in time: if a
// commit in between touched both keys, its view is torn and Commit must
// fail (the bench's content workload found this through Adaptive hot keys).
func TestReadOnlyCommitValidatesMixedReads(t *testing.T) {
	db := openEngine(t)
	ctx := context.Background()
	put2 := func(v string) {
		t.Helper()
		err := db.Update(ctx, nil, func(tx *Tx) error {
			if err := tx.Put([]byte("a"), []byte(v)); err != nil {
				return err
			}
			return tx.Put([]byte("b"), []byte(v))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	put2("0")
	tx, err := db.Begin(ctx, &TxOptions{Strategy: Optimistic, Isolation: Serializable})
	if err != nil {
		t.Fatal(err)
	}
	a, err := tx.Get([]byte("a")) // snapshot: "0"
	if err != nil {
		t.Fatal(err)
	}
	put2("1")
	b, err := tx.GetForShare([]byte("b")) // latest, under a lock: "1"
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != "0" || string(b) != "1" {
		t.Fatalf("a=%q b=%q: the setup did not produce a torn view", a, b)
	}
	var ce *ConflictError
	if err := tx.Commit(); !errors.As(err, &ce) || string(ce.Key) != "a" {
		t.Fatalf("Commit of a torn read-only view = %v, want a conflict on a", err)
	}
	// Without the interleaved commit the same shape commits.
	tx2, _ := db.Begin(ctx, &TxOptions{Strategy: Optimistic, Isolation: Serializable})
	if _, err := tx2.Get([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if _, err := tx2.GetForShare([]byte("b")); err != nil {
		t.Fatal(err)
	}
	if err := tx2.Commit(); err != nil {
		t.Fatalf("consistent mixed read-only commit = %v", err)
	}
}
