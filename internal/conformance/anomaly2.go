package conformance

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/txkv/txkv"
)

// The anomalies anomaly_test.go does not cover (Berenson et al. 1995 P0,
// P1, P2 and A5A), in its shape: tg.testX(t, m) over every strategy at both
// isolation levels, each in a fixed interleaving driven by sched, with each
// mode's expected outcome written in a table. What must hold in every mode
// (the anomaly never happens) is checked separately from how each mode
// prevents it (who waits, who fails), which the tables pin down.
//
//	                     pessimistic            optimistic, hybrid, adaptive
//	                     Serializable Snapshot  Serializable      Snapshot
//	P0 dirty write       W2 waits     W2 waits, W2 fails  (blind writes:    second committer
//	                                  first-updater-wins   serial T2,T1)    fails
//	P1 dirty read        reader waits never waits, reads the last committed value
//	A5A read skew        writer waits reader reads its snapshot; Serializable OCC
//	                                  fails the reader's commit (its read changed)
//	P2 fuzzy read        writer waits reread = first read (the snapshot)
//
// Hybrid and Adaptive run optimistically on their first attempt (Adaptive's
// keys are cold in a fresh DB), so they share the optimistic column.

// column maps a mode to the column of the tables above.
func column(m mode) string {
	s := "optimistic"
	if m.Strategy == txkv.Pessimistic {
		s = "pessimistic"
	}
	return s + "-" + m.Iso.String()
}

// ---- P0 dirty write -----------------------------------------------------

func DirtyWrite(t *testing.T, tg Target) { tg.forModes(t, tg.modes(), tg.testDirtyWrite) }

// w1[x] w2[x] w2[y] c2 w1[y] c1: with dirty writes allowed, x ends as T1's
// and y as T2's — a state no serial order produces. In every mode x == y
// at the end, equal to the transaction the table says commits last.
func (tg Target) testDirtyWrite(t *testing.T, m mode) {
	expect := map[string]struct {
		w2Waits bool   // T2's first write waits for T1's X lock
		fails   string // the Session that fails with a retryable error ("" none)
		finalXY string // the value of x and y at the end
	}{
		"pessimistic-serializable": {w2Waits: true, finalXY: "2"},              // T1 then T2
		"pessimistic-snapshot":     {w2Waits: true, fails: "T2", finalXY: "1"}, // x changed after T2's snapshot
		"optimistic-serializable":  {finalXY: "1"},                             // blind writes: serial T2, T1
		"optimistic-snapshot":      {fails: "T1", finalXY: "2"},                // first committer wins
	}[column(m)]
	db := tg.Open(t)
	MustPut(t, db, "x", "0")
	MustPut(t, db, "y", "0")
	sc := NewSched(t, db)
	t1, t2 := sc.Begin("T1", m.TxOptions()), sc.Begin("T2", m.TxOptions())
	put := func(k, v string) func(*txkv.Tx) error {
		return func(tx *txkv.Tx) error { return tx.Put([]byte(k), []byte(v)) }
	}
	t1.Do("w1[x]", put("x", "1"))
	t2.Do("w2[x]", put("x", "2"))
	t2.Do("w2[y]", put("y", "2"))
	t2.Commit()
	t1.Do("w1[y]", put("y", "1"))
	t1.Commit()
	sc.Finish()

	x, _ := GetString(t, db, "x")
	y, _ := GetString(t, db, "y")
	if x != y {
		t.Fatalf("x=%s y=%s: a dirty write interleaved the two transactions", x, y)
	}
	if t2.BlockedIn("w2[x]") != expect.w2Waits {
		t.Fatalf("T2's write of x waited: %v, want %v", t2.BlockedIn("w2[x]"), expect.w2Waits)
	}
	for _, s := range []*Session{t1, t2} {
		if s.name == expect.fails {
			if err := s.Failure(); !txkv.IsRetryable(err) {
				t.Fatalf("%s ended with %v, want a retryable conflict", s.name, err)
			}
		} else if !s.Committed() {
			t.Fatalf("%s did not commit: %v", s.name, s.Failure())
		}
	}
	if x != expect.finalXY {
		t.Fatalf("x=y=%s, want %s", x, expect.finalXY)
	}
}

// ---- P1 dirty read ------------------------------------------------------

func DirtyRead(t *testing.T, tg Target) {
	tg.forModes(t, tg.modes(), func(t *testing.T, m mode) {
		t.Run("writer-aborts", func(t *testing.T) { tg.testDirtyRead(t, m, false) })
		t.Run("writer-commits", func(t *testing.T) { tg.testDirtyRead(t, m, true) })
	})
}

// T1 updates x, inserts "new" and deletes "gone", uncommitted. T2 reads the
// three keys and scans them, as do db.Get and View meanwhile; then T1 ends.
// Nobody ever sees T1's uncommitted state. Under strict 2PL T2's read
// waits for T1's X lock and, if T1 commits, then reads its (now committed)
// values; every other mode reads the last committed state at once.
func (tg Target) testDirtyRead(t *testing.T, m mode, writerCommits bool) {
	waits := m == PessimisticSerializable
	db := tg.Open(t)
	MustPut(t, db, "x", "clean")
	MustPut(t, db, "gone", "here")
	sc := NewSched(t, db)
	t1, t2 := sc.Begin("T1", m.TxOptions()), sc.Begin("T2", m.TxOptions())
	t1.Do("w1", func(tx *txkv.Tx) error {
		if err := tx.Put([]byte("x"), []byte("dirty")); err != nil {
			return err
		}
		if err := tx.Put([]byte("new"), []byte("dirty")); err != nil {
			return err
		}
		return tx.Delete([]byte("gone"))
	})
	var seen []string
	read := func(tx *txkv.Tx) error {
		for _, k := range []string{"x", "new", "gone"} {
			v, err := tx.Get([]byte(k))
			switch {
			case errors.Is(err, txkv.ErrNotFound):
				seen = append(seen, k+" absent")
			case err != nil:
				return err
			default:
				seen = append(seen, k+"="+string(v))
			}
		}
		return tx.Scan(nil, nil, func(k, v []byte) error {
			seen = append(seen, "scan "+string(k)+"="+string(v))
			return nil
		})
	}
	t2.Do("r2", read)
	// Outside any transaction, the uncommitted state is invisible too.
	WantValue(t, db, "x", "clean")
	WantAbsent(t, db, "new")
	if err := db.View(bg, func(tx *txkv.Tx) error {
		if got := scanAll(t, tx, nil, nil); fmt.Sprint(got) != "[gone=here x=clean]" {
			return fmt.Errorf("the View's scan during T1 = %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if waits != t2.BlockedIn("r2") {
		t.Fatalf("T2's read waited: %v, want %v", t2.BlockedIn("r2"), waits)
	}
	if writerCommits {
		t1.Commit()
	} else {
		t1.Do("a1", rollbackStep)
	}
	t2.Await("r2")
	t2.Commit()
	sc.Finish()

	clean := fmt.Sprint([]string{"x=clean", "new absent", "gone=here", "scan gone=here", "scan x=clean"})
	committed := fmt.Sprint([]string{"x=dirty", "new=dirty", "gone absent", "scan new=dirty", "scan x=dirty"})
	want := clean
	if waits && writerCommits {
		want = committed // read after T1's commit, under T2's locks
	}
	if got := fmt.Sprint(seen); got != want {
		t.Fatalf("T2 read %s, want %s", got, want)
	}
	if !t2.Committed() {
		t.Fatalf("T2 (a reader) did not commit: %v", t2.Failure())
	}
}

// ---- A5A read skew ------------------------------------------------------

func ReadSkew(t *testing.T, tg Target) { tg.forModes(t, tg.modes(), tg.testReadSkew) }

// x and y hold 50 each. r1[x] w2[x=10] w2[y=90] c2 r1[y] scan1 w1[sum] c1:
// T1 must never see half of T2's transfer (x=50 with y=90) — not by point
// reads, not by a scan. It writes the sum it saw; the table says whether it
// may commit.
func (tg Target) testReadSkew(t *testing.T, m mode) {
	expect := map[string]struct {
		writerWaits bool // T2's first write waits for T1's S lock
		readerFails bool // T1's commit fails validation
	}{
		"pessimistic-serializable": {writerWaits: true},
		"pessimistic-snapshot":     {},
		"optimistic-serializable":  {readerFails: true}, // T1's read of x changed
		"optimistic-snapshot":      {},
	}[column(m)]
	db := tg.Open(t)
	MustPut(t, db, "acct/x", "50")
	MustPut(t, db, "acct/y", "50")
	sc := NewSched(t, db)
	t1, t2 := sc.Begin("T1", m.TxOptions()), sc.Begin("T2", m.TxOptions())
	var x, y, scanned int
	get := func(k string, dst *int) func(*txkv.Tx) error {
		return func(tx *txkv.Tx) error {
			v, err := tx.Get([]byte(k))
			if err != nil {
				return err
			}
			*dst, err = strconv.Atoi(string(v))
			return err
		}
	}
	put := func(k, v string) func(*txkv.Tx) error {
		return func(tx *txkv.Tx) error { return tx.Put([]byte(k), []byte(v)) }
	}
	t1.Do("r1[x]", get("acct/x", &x))
	t2.Do("w2[x]", put("acct/x", "10"))
	t2.Do("w2[y]", put("acct/y", "90"))
	t2.Commit()
	t1.Do("r1[y]", get("acct/y", &y))
	t1.Do("scan1", func(tx *txkv.Tx) error {
		return tx.Scan([]byte("acct/"), []byte("acct0"), func(_, v []byte) error {
			n, err := strconv.Atoi(string(v))
			scanned += n
			return err
		})
	})
	t1.Do("w1[sum]", func(tx *txkv.Tx) error { return tx.Put([]byte("sum"), []byte(strconv.Itoa(x+y))) })
	t1.Commit()
	sc.Finish()

	if x+y != 100 || scanned != 100 {
		t.Fatalf("T1 read x=%d y=%d (sum %d) and scanned a total of %d: read skew", x, y, x+y, scanned)
	}
	if t2.BlockedIn("w2[x]") != expect.writerWaits {
		t.Fatalf("T2's write waited: %v, want %v", t2.BlockedIn("w2[x]"), expect.writerWaits)
	}
	if !t2.Committed() {
		t.Fatalf("T2 (the transfer) did not commit: %v", t2.Failure())
	}
	if expect.readerFails {
		var ce *txkv.ConflictError
		if err := t1.Err("commit"); !errors.As(err, &ce) || string(ce.Key) != "acct/x" {
			t.Fatalf("T1's commit = %v, want a *ConflictError on acct/x", err)
		}
		WantAbsent(t, db, "sum")
	} else {
		if !t1.Committed() {
			t.Fatalf("T1 did not commit: %v", t1.Failure())
		}
		WantValue(t, db, "sum", "100")
	}
	WantValue(t, db, "acct/x", "10")
	WantValue(t, db, "acct/y", "90")
}

// ---- P2 non-repeatable (fuzzy) read -------------------------------------

func NonRepeatableRead(t *testing.T, tg Target) { tg.forModes(t, tg.modes(), tg.testNonRepeatableRead) }

// r1[x] w2[x] c2 r1[x] c1: T1's second read returns the same value and the
// same version as its first, even though T2 committed in between (or, under
// strict 2PL, T2 could not commit in between: its write waits for T1).
func (tg Target) testNonRepeatableRead(t *testing.T, m mode) {
	writerWaits := m == PessimisticSerializable
	db := tg.Open(t)
	MustPut(t, db, "x", "v0")
	sc := NewSched(t, db)
	t1, t2 := sc.Begin("T1", m.TxOptions()), sc.Begin("T2", m.TxOptions())
	type read struct {
		value   string
		version uint64
	}
	var first, second read
	get := func(dst *read) func(*txkv.Tx) error {
		return func(tx *txkv.Tx) error {
			v, ver, err := tx.GetVersioned([]byte("x"))
			*dst = read{string(v), ver}
			return err
		}
	}
	t1.Do("r1[x]", get(&first))
	t2.Do("w2[x]", func(tx *txkv.Tx) error { return tx.Put([]byte("x"), []byte("v1")) })
	t2.Commit()
	if writerWaits != (t2.BlockedIn("w2[x]") || t2.BlockedIn("commit")) {
		t.Fatalf("T2 waited: %v, want %v", !writerWaits, writerWaits)
	}
	t1.Do("r1[x] again", get(&second))
	t1.Commit()
	sc.Finish()
	if first != second || first.value != "v0" {
		t.Fatalf("T1 read x as %+v, then %+v: a non-repeatable read", first, second)
	}
	if !t1.Committed() || !t2.Committed() {
		t.Fatalf("T1 %v, T2 %v: both must commit", t1.Failure(), t2.Failure())
	}
	WantValue(t, db, "x", "v1")
}
