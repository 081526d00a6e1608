package etcdkv

import (
	"testing"

	"github.com/txkv/txkv/lockmgr"
)

// The grant rule on hand-made queues.

func pt(key string, m lockmgr.Mode, tx uint64, rev int64, granted bool) entry {
	return entry{key: key + "/" + string(rune('0'+tx)), start: []byte(key), mode: m, own: owner{1, tx}, rev: rev, granted: granted}
}

func rg(start, end string, m lockmgr.Mode, tx uint64, rev int64, granted bool) entry {
	e := entry{key: "r" + start, start: []byte(start), isRange: true, mode: m, own: owner{1, tx}, rev: rev, granted: granted}
	if end != "" {
		e.end = []byte(end)
	}
	return e
}

func owners(bl []entry) []uint64 {
	var out []uint64
	for _, b := range bl {
		out = append(out, b.own.tx)
	}
	return out
}

func TestBlockersRule(t *testing.T) {
	S, X := lockmgr.Shared, lockmgr.Exclusive
	up := func(e entry, base int64) entry { e.base = base; return e }
	cases := []struct {
		name string
		req  entry
		snap []entry
		want []uint64
	}{
		{"S beside S holders", pt("k", S, 9, 0, false),
			[]entry{pt("k", S, 1, 10, true), pt("k", S, 2, 11, true)}, nil},
		{"X behind S holders", pt("k", X, 9, 0, false),
			[]entry{pt("k", S, 1, 10, true), pt("k", S, 2, 11, true)}, []uint64{1, 2}},
		{"S behind a queued X (no barging)", pt("k", S, 9, 20, false),
			[]entry{pt("k", S, 1, 10, true), pt("k", X, 2, 11, false)}, []uint64{2}},
		{"a waiter behind me is not in my way", pt("k", X, 9, 12, false),
			[]entry{pt("k", S, 1, 10, true), pt("k", X, 2, 15, false)}, []uint64{1}},
		{"upgrade ahead of the X waiter its S blocks", up(pt("k", X, 1, 20, false), 10),
			[]entry{pt("k", S, 1, 10, true), pt("k", X, 2, 11, false)}, nil},
		{"upgrade waits for the other S holder", up(pt("k", X, 1, 20, false), 10),
			[]entry{pt("k", S, 1, 10, true), pt("k", S, 3, 12, true), pt("k", X, 2, 13, false)}, []uint64{3}},
		{"an upgrade does not pass a waiter elsewhere in its range", up(rg("a", "z", X, 1, 20, false), 10),
			[]entry{pt("b", S, 1, 10, true), pt("n", S, 3, 11, true), pt("n", X, 2, 12, false)}, []uint64{3, 2}},
		{"... nor one queued elsewhere only", up(rg("a", "z", X, 1, 20, false), 10),
			[]entry{pt("b", S, 1, 10, true), pt("n", X, 2, 12, false)}, []uint64{2}},
		{"a queued upgrade stands at its base", pt("k", S, 9, 15, false),
			[]entry{pt("k", S, 1, 10, true), up(pt("k", X, 1, 20, false), 10)}, []uint64{1}},
		{"a range covers the point", pt("c", X, 9, 0, false),
			[]entry{rg("b", "d", S, 1, 10, true)}, []uint64{1}},
		{"the range ends before it", pt("d", X, 9, 0, false),
			[]entry{rg("b", "d", X, 1, 10, true)}, nil},
		{"an open range", pt("zzz", S, 9, 0, false),
			[]entry{rg("b", "", X, 1, 10, true)}, []uint64{1}},
		{"a range over point holders", rg("a", "m", S, 9, 0, false),
			[]entry{pt("c", X, 1, 10, true), pt("n", X, 2, 10, true), pt("d", S, 3, 10, true)}, []uint64{1}},
		{"my own entries never block", pt("k", X, 1, 0, false),
			[]entry{pt("k", S, 1, 10, true)}, nil},
	}
	for _, c := range cases {
		got := owners(blockers(&c.req, c.snap))
		if len(got) != len(c.want) || (len(got) > 0 && got[0] != c.want[0]) {
			t.Errorf("%s: blockers %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCovers(t *testing.T) {
	S, X := lockmgr.Shared, lockmgr.Exclusive
	cases := []struct {
		h, r entry
		want bool
	}{
		{pt("k", X, 1, 1, true), pt("k", S, 1, 0, false), true},
		{pt("k", S, 1, 1, true), pt("k", X, 1, 0, false), false},
		{rg("a", "m", X, 1, 1, true), pt("c", X, 1, 0, false), true},
		{rg("a", "m", X, 1, 1, true), pt("m", X, 1, 0, false), false},
		{rg("a", "", S, 1, 1, true), rg("b", "", S, 1, 0, false), true},
		{rg("a", "m", S, 1, 1, true), rg("b", "", S, 1, 0, false), false},
	}
	for i, c := range cases {
		if got := covers(&c.h, &c.r); got != c.want {
			t.Errorf("case %d: covers = %v, want %v", i, got, c.want)
		}
	}
}

// Lock keys keep user order: hex(a)+"/" < hex(b)+"/" exactly when a < b,
// so a user range is one etcd range of queues.
func TestLockKeyOrder(t *testing.T) {
	ks := keyspace{prefix: "p/"}
	keys := []string{"a", "a\x00", "a/b", "ab", "b", "\xff"}
	for i := 1; i < len(keys); i++ {
		a, _ := ks.queue([]byte(keys[i-1]))
		b, _ := ks.queue([]byte(keys[i]))
		if a >= b {
			t.Errorf("queue(%q) = %q >= queue(%q) = %q", keys[i-1], a, keys[i], b)
		}
		if _, end := ks.queue([]byte(keys[i-1])); end > b {
			t.Errorf("queue(%q) ends at %q, past queue(%q)", keys[i-1], end, keys[i])
		}
	}
}
