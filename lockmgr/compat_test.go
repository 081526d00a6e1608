package lockmgr

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

// TestCompatibilityExhaustive checks, for every (held, requested) pair of
// the matrix and every shape of target pair, that a second transaction's
// NOWAIT request is refused exactly when the modes conflict and the targets
// overlap - the matrix drives the test, so a new mode is covered for free.
func TestCompatibilityExhaustive(t *testing.T) {
	type shape struct {
		name       string
		held, req  Target
		overlapped bool
	}
	p, r := Point, func(a, b string) Target {
		var e []byte
		if b != "" {
			e = []byte(b)
		}
		return Span([]byte(a), e)
	}
	shapes := []shape{
		{"same point", p([]byte("c")), p([]byte("c")), true},
		{"other point", p([]byte("c")), p([]byte("d")), false},
		{"point in range", p([]byte("c")), r("b", "d"), true},
		{"point at range end", p([]byte("d")), r("b", "d"), false},
		{"range over point", r("b", "d"), p([]byte("b")), true},
		{"range before point", r("a", "c"), p([]byte("c")), false},
		{"overlapping ranges", r("a", "c"), r("b", "d"), true},
		{"adjacent ranges", r("a", "c"), r("c", "e"), false},
		{"unbounded range", r("m", ""), r("x", "z"), true},
		{"range from start", r("", "b"), p([]byte("a")), true},
	}
	for held := Mode(0); held < numModes; held++ {
		for req := Mode(0); req < numModes; req++ {
			if Conflicts(held, req) != conflictMatrix[held][req] {
				t.Fatalf("Conflicts(%v,%v) disagrees with the matrix", held, req)
			}
			if Conflicts(held, req) != Conflicts(req, held) {
				t.Errorf("matrix not symmetric at %v/%v", held, req)
			}
			for _, s := range shapes {
				t.Run(fmt.Sprintf("%s/%s/%s", held, req, s.name), func(t *testing.T) {
					m := New(nil)
					defer m.Close()
					ctx := context.Background()
					if err := m.Acquire(ctx, 1, s.held, held, NoWait, Forever); err != nil {
						t.Fatal(err)
					}
					err := m.Acquire(ctx, 2, s.req, req, NoWait, Forever)
					want := s.overlapped && Conflicts(held, req)
					if got := errors.Is(err, ErrLockNotAvailable); got != want || (!want && err != nil) {
						t.Fatalf("held %v %v, requested %v %v: err %v, want conflict=%v", held, s.held, req, s.req, err, want)
					}
					// The same transaction never conflicts with itself.
					m.ReleaseAll(2)
					if err := m.Acquire(ctx, 1, s.req, req, NoWait, Forever); err != nil {
						t.Fatalf("self request: %v", err)
					}
				})
			}
		}
	}
	if Conflicts(Mode(7), Shared) != true || Mode(7).String() != "Mode(7)" {
		t.Error("unknown modes must conflict and print their number")
	}
	if Shared.String() != "shared" || Exclusive.String() != "exclusive" {
		t.Error("mode names")
	}
	if !Exclusive.covers(Shared) || Shared.covers(Exclusive) || !Shared.covers(Shared) {
		t.Error("covers")
	}
}
