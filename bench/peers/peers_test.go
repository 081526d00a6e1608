package peers

import (
	"errors"
	"testing"
	"time"

	"github.com/txkv/txkv"
)

// TestSmoke runs every contender on every row briefly, with and without
// durability, and requires each invariant to hold.
func TestSmoke(t *testing.T) {
	rows := Rows(4)
	for _, c := range Contenders([]txkv.Strategy{txkv.Pessimistic, txkv.Optimistic}) {
		for _, row := range rows {
			for _, durable := range []bool{false, true} {
				if !c.runs(row, durable) {
					continue
				}
				smp, err := Measure(c, row, durable, 30*time.Millisecond, 1)
				if err != nil {
					t.Errorf("%s / %s / durable=%v: %v", c.Name, row.Name, durable, err)
					continue
				}
				if smp.Ops == 0 {
					t.Errorf("%s / %s / durable=%v: no operations", c.Name, row.Name, durable)
				}
			}
		}
	}
}

// TestCheckFails shows the bank invariant can fail: a store that loses a
// write is caught.
func TestCheckFails(t *testing.T) {
	s := OpenMap()
	w := Bank(10)
	if err := w.Setup(s); err != nil {
		t.Fatal(err)
	}
	if err := w.Check(s); err != nil {
		t.Fatalf("fresh bank: %v", err)
	}
	_ = s.Update(func(tx Tx) error { return tx.Put(key("bank/%06d", 3), enc(bankInitial+1)) })
	if err := w.Check(s); err == nil {
		t.Fatal("a bank with money from nowhere passed its check")
	}
	w.Setup = func(Store) error { return nil } // keep the tampered state
	if _, err := drive(s, w, 1, time.Millisecond, 1); !errors.Is(err, ErrInvariant) {
		t.Fatalf("drive = %v, want ErrInvariant", err)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
