package txkv_test

import (
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"testing"

	"github.com/txkv/txkv"
)

// The one-key helpers: CompareAndSwap and Increment are atomic
// read-modify-writes.

func TestCompareAndSwap(t *testing.T) {
	db := openMem(t, nil)
	k := []byte("k")
	steps := []struct {
		name        string
		old, new    []byte
		wantSwapped bool
		wantValue   string // "" with wantAbsent
		wantAbsent  bool
	}{
		{"absent, old nil: insert", nil, []byte("v1"), true, "v1", false},
		{"present, old nil: no swap", nil, []byte("v2"), false, "v1", false},
		{"present, mismatch: no swap", []byte("nope"), []byte("v2"), false, "v1", false},
		{"present, match: swap", []byte("v1"), []byte("v2"), true, "v2", false},
		{"present, empty old mismatch", []byte{}, []byte("v3"), false, "v2", false},
		{"present, match, new nil: delete", []byte("v2"), nil, true, "", true},
		{"absent, old non-nil: no swap", []byte("v2"), []byte("v3"), false, "", true},
		{"absent, old nil, new nil: delete absent", nil, nil, true, "", true},
		{"absent, old nil: insert empty", nil, []byte{}, true, "", false},
		{"empty value, old empty: swap", []byte{}, []byte("v4"), true, "v4", false},
	}
	for _, s := range steps {
		swapped, err := db.CompareAndSwap(bg, k, s.old, s.new)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if swapped != s.wantSwapped {
			t.Fatalf("%s: swapped = %v, want %v", s.name, swapped, s.wantSwapped)
		}
		if s.wantAbsent {
			wantAbsent(t, db, "k")
		} else {
			wantValue(t, db, "k", s.wantValue)
		}
	}
}

// CAS is linearizable: N goroutines racing to CAS from the same old value;
// exactly one wins each round.
func TestCompareAndSwapOneWinner(t *testing.T) {
	db := openMem(t, nil)
	mustPut(t, db, "k", "0")
	const goroutines, rounds = 4, 25
	for r := range rounds {
		old := []byte{byte('0' + r%10)}
		next := []byte{byte('0' + (r+1)%10)}
		var wins sync.WaitGroup
		results := make(chan bool, goroutines)
		for range goroutines {
			wins.Add(1)
			go func() {
				defer wins.Done()
				ok, err := db.CompareAndSwap(bg, []byte("k"), old, next)
				if err != nil {
					t.Errorf("CAS: %v", err)
				}
				results <- ok
			}()
		}
		wins.Wait()
		close(results)
		n := 0
		for ok := range results {
			if ok {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("round %d: %d winners, want exactly 1", r, n)
		}
	}
}

func TestIncrement(t *testing.T) {
	db := openMem(t, nil)
	n := []byte("n")
	for _, s := range []struct{ delta, want int64 }{{5, 5}, {-7, -2}, {0, -2}, {math.MaxInt64, math.MaxInt64 - 2}} {
		got, err := db.Increment(bg, n, s.delta)
		if err != nil || got != s.want {
			t.Fatalf("Increment(%d) = %d, %v; want %d", s.delta, got, err, s.want)
		}
	}
	// The counter format is 8 bytes big-endian.
	raw, err := db.Get(bg, n)
	if err != nil || len(raw) != 8 || int64(binary.BigEndian.Uint64(raw)) != math.MaxInt64-2 {
		t.Fatalf("stored counter %x, %v", raw, err)
	}
	// Overflow is an error and changes nothing.
	if _, err := db.Increment(bg, n, 3); err == nil {
		t.Fatal("Increment past MaxInt64 succeeded")
	}
	if got, err := db.Increment(bg, n, 0); err != nil || got != math.MaxInt64-2 {
		t.Fatalf("after the overflow the counter is %d, %v", got, err)
	}
	if got, err := db.Increment(bg, []byte("neg"), math.MinInt64); err != nil || got != math.MinInt64 {
		t.Fatalf("Increment(MinInt64) from 0 = %d, %v", got, err)
	}
	if _, err := db.Increment(bg, []byte("neg"), -1); err == nil {
		t.Fatal("Increment below MinInt64 succeeded")
	}
}

func TestIncrementNotCounter(t *testing.T) {
	db := openMem(t, nil)
	for name, v := range map[string]string{"text": "abc", "empty": "", "9 bytes": "123456789"} {
		mustPut(t, db, name, v)
		if _, err := db.Increment(bg, []byte(name), 1); !errors.Is(err, txkv.ErrNotCounter) {
			t.Errorf("Increment of a %s value = %v, want ErrNotCounter", name, err)
		}
		wantValue(t, db, name, v)
	}
}

// 8 goroutines × 200 increments of one counter must total exactly 1600.
func TestIncrementConcurrent(t *testing.T) {
	for _, file := range []bool{false, true} {
		t.Run(map[bool]string{false: "memory", true: "file"}[file], func(t *testing.T) {
			var db *txkv.DB
			if file {
				db, _ = openFile(t, &txkv.Options{Sync: txkv.SyncNone})
			} else {
				db = openMem(t, nil)
			}
			const goroutines, each = 8, 200
			var wg sync.WaitGroup
			for range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range each {
						if _, err := db.Increment(bg, []byte("hits"), 1); err != nil {
							t.Errorf("Increment: %v", err)
							return
						}
					}
				}()
			}
			wg.Wait()
			got, err := db.Increment(bg, []byte("hits"), 0)
			if err != nil || got != goroutines*each {
				t.Fatalf("counter = %d, %v; want %d", got, err, goroutines*each)
			}
		})
	}
}
