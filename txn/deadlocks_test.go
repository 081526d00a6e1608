package txn

import (
	"testing"
	"time"

	"github.com/txkv/txkv/lockmgr"
)

// The deadlock log keeps the last recentDeadlocksKept reports, hands out
// those after a sequence number oldest first, and says by its numbering
// how many were dropped.
func TestDeadlockLogKeepsTheLatest(t *testing.T) {
	var l deadlockLog
	if got := l.since(0); len(got) != 0 {
		t.Fatalf("empty log returned %d records", len(got))
	}
	for i := 1; i <= 40; i++ {
		l.add(&lockmgr.DeadlockError{Victim: uint64(i)}, time.Unix(int64(i), 0))
	}
	all := l.since(0)
	if len(all) != recentDeadlocksKept || all[0].Seq != 40-recentDeadlocksKept+1 || all[len(all)-1].Seq != 40 {
		t.Fatalf("since(0): %d records, %d..%d", len(all), all[0].Seq, all[len(all)-1].Seq)
	}
	for i, r := range all {
		if r.Err.Victim != r.Seq || (i > 0 && r.Seq != all[i-1].Seq+1) {
			t.Fatalf("record %d: seq %d victim %d", i, r.Seq, r.Err.Victim)
		}
	}
	if got := l.since(37); len(got) != 3 || got[0].Seq != 38 {
		t.Fatalf("since(37) = %d records from %d", len(got), got[0].Seq)
	}
	if got := l.since(40); len(got) != 0 {
		t.Fatalf("since(newest) = %d records", len(got))
	}
}
