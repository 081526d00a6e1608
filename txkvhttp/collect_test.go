package txkvhttp

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// fakeClock is a collector clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// A new Server reads nothing: no snapshot, no history, no deadlock
// sampling, until a client asks.
func TestNothingCollectedUntilWatched(t *testing.T) {
	db := openMem(t)
	s := NewServer(db)
	if err := db.Put(bg, []byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.snap != nil || len(c.mu.samples) != 0 || c.mu.prev != nil || c.mu.watching {
		t.Fatalf("a Server nobody asked collected something")
	}
}

// The history keeps HistoryPoints points, the deadlocks MaxDeadlocks,
// however long it runs; rates are per second.
func TestHistoryBounded(t *testing.T) {
	db := openMem(t)
	c := newCollector(db, "")
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	for i := range 3 * HistoryPoints {
		if err := db.Update(bg, &txkv.TxOptions{Strategy: txkv.Pessimistic}, func(tx *txkv.Tx) error {
			return tx.Put([]byte("k"), []byte{byte(i)})
		}); err != nil {
			t.Fatal(err)
		}
		c.snapshot()
		clk.t = clk.t.Add(SampleInterval)
	}
	s := c.snapshot()
	if len(c.mu.samples) != HistoryPoints {
		t.Fatalf("%d samples, want %d", len(c.mu.samples), HistoryPoints)
	}
	if len(s.Strategies.Series) != 1 || s.Strategies.Series[0].Strategy != "pessimistic" {
		t.Fatalf("series = %+v", s.Strategies.Series)
	}
	pts := s.Strategies.Series[0].Points
	if len(pts) != HistoryPoints || pts[len(pts)-2].Commits != 1 || pts[len(pts)-1].Commits != 0 {
		t.Fatalf("%d points, last two %+v: want %d, one commit per second, then none", len(pts), pts[len(pts)-2:], HistoryPoints)
	}
	c.mu.Lock()
	for range MaxDeadlocks + 5 {
		c.captureLocked(db, txkv.DeadlockRecord{Time: clk.t, Err: &txkv.DeadlockError{Victim: 2, Cycle: []txkv.WaitEdge{{Waiter: 1, Holder: 2}, {Waiter: 2, Holder: 1}}}}, false)
	}
	n := len(c.mu.deadlocks)
	c.mu.Unlock()
	if n != MaxDeadlocks {
		t.Fatalf("%d deadlocks kept, want %d", n, MaxDeadlocks)
	}
}

// SetDB moves the view to another DB: a mark on the charts, the caption,
// and the old DB's deadlock is no longer drawn on the new one's graph.
func TestSetDB(t *testing.T) {
	db1, db2 := openMem(t), openMem(t)
	s := NewServer(db1)
	deadlock(t, db1, "a", "b")
	if g := s.c.snapshot().Graph; g.Deadlock == nil {
		t.Fatalf("no deadlock drawn on db1's graph")
	}
	s.SetDB(db2, "bank / pessimistic <b>")
	snap := s.c.snapshot()
	if snap.Caption != "bank / pessimistic <b>" || snap.Graph.Deadlock != nil || len(snap.Deadlocks.Recent) != 1 ||
		len(snap.Strategies.Marks) != 1 {
		t.Fatalf("after SetDB: %+v", snap)
	}
	if _, page := get(t, s, "/"); !contains(page, "bank / pessimistic &lt;b&gt;") {
		t.Errorf("the page does not show the caption escaped")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// A snapshot does not change after it was taken, as deadlocks arrive.
func TestSnapshotStable(t *testing.T) {
	db := openMem(t)
	c := newCollector(db, "")
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	c.mu.Lock()
	c.captureLocked(db, txkv.DeadlockRecord{Time: clk.t, Err: &txkv.DeadlockError{Victim: 2, Cycle: []txkv.WaitEdge{{Waiter: 1, Holder: 2}, {Waiter: 2, Holder: 1}}}}, false)
	c.mu.Unlock()
	s := c.snapshot()
	if s.Graph.Deadlock == nil || s.Graph.Deadlock.Victim != 2 {
		t.Fatalf("graph deadlock = %+v", s.Graph.Deadlock)
	}
	c.mu.Lock()
	c.captureLocked(db, txkv.DeadlockRecord{Time: clk.t, Err: &txkv.DeadlockError{Victim: 4, Cycle: []txkv.WaitEdge{{Waiter: 3, Holder: 4}, {Waiter: 4, Holder: 3}}}}, false)
	c.mu.Unlock()
	if s.Graph.Deadlock.Victim != 2 || s.Graph.Deadlock.Seq != 1 {
		t.Fatalf("the snapshot's deadlock changed to %+v", s.Graph.Deadlock)
	}
}

// Every deadlock found between two polls is listed, not only the latest;
// deadlocks the DB no longer keeps (over 32 between polls) are counted as
// missed, never silently dropped.
func TestEveryDeadlockBetweenPollsListed(t *testing.T) {
	db := openMem(t)
	c := newCollector(db, "")
	clk := &fakeClock{t: time.Unix(1e9, 0)}
	c.now = clk.now
	c.poll() // someone starts watching
	finish := func(victim, survivor *txkv.Tx) { _ = survivor.Rollback() }
	for i := range 3 {
		finish(deadlock(t, db, fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i)))
	}
	c.poll()
	clk.t = clk.t.Add(time.Second) // past the snapshot cache
	l := c.snapshot().Deadlocks
	if len(l.Recent) != 3 || l.Missed != 0 {
		t.Fatalf("after 3 deadlocks between polls: %d listed, %d missed; want 3, 0", len(l.Recent), l.Missed)
	}
	for i := range 40 {
		finish(deadlock(t, db, fmt.Sprintf("c%d", i), fmt.Sprintf("d%d", i)))
	}
	c.poll()
	clk.t = clk.t.Add(time.Second)
	l = c.snapshot().Deadlocks
	if len(l.Recent) != MaxDeadlocks || l.Missed != 40-32 || l.Total != 43 {
		t.Fatalf("after 40 more: %d listed, %d missed, %d in all; want %d, 8, 43", len(l.Recent), l.Missed, l.Total, MaxDeadlocks)
	}
}
