package txn

import (
	"fmt"
	"testing"
	"time"
)

// The space-saving table: the hottest keys come first; when it is full, a new key takes over
// the smallest counter and inherits its score in the ranking, so a burst of cold keys cannot
// push a truly hot one out; every epoch halves the counts and forgets what reached zero.
func TestHotKeysTable(t *testing.T) {
	h := newHotKeys()
	now := time.Unix(0, 0)
	h.now = func() time.Time { return now }
	h.mu.epoch = now
	for range 50 {
		h.note([]byte("hot"), nil, false, hotConflict)
	}
	for range 10 {
		h.note([]byte("warm"), nil, false, hotWait)
	}
	h.note([]byte("r"), []byte("s"), true, hotDeadlock)
	for i := range 3 * hotKeysTracked { // cold keys, one event each: they churn the tail
		h.note(fmt.Appendf(nil, "cold%04d", i), nil, false, hotWait)
	}
	top := h.top(2)
	if len(top) != 2 || string(top[0].Key) != "hot" || top[0].Conflicts != 50 ||
		string(top[1].Key) != "warm" || top[1].LockWaits != 10 {
		t.Fatalf("top 2 = %+v, want hot (50 conflicts), warm (10 waits)", top)
	}
	if n := len(h.top(-1)); n != hotKeysTracked {
		t.Fatalf("%d tracked, want %d", n, hotKeysTracked)
	}
	now = now.Add(2 * hotKeysEpoch) // counts quarter: the one-event keys are gone
	top = h.top(-1)
	if string(top[0].Key) != "hot" || top[0].Conflicts != 12 || top[1].LockWaits != 2 {
		t.Fatalf("after two epochs: %+v", top[:2])
	}
	for _, k := range top {
		if k.Conflicts+k.LockWaits+k.Deadlocks == 0 && string(k.Key) != "hot" && string(k.Key) != "warm" {
			t.Fatalf("a key with nothing left is still listed: %+v", k)
		}
	}
}
